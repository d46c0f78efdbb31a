// /metrics: the families an operator needs, valid for `promtool check metrics`.
#include <cstdio>
#include <fstream>

#include "harness.h"

namespace quotum::itest {
namespace {

using testing::HttpClient;

TEST(Metrics, LiveScrapePassesPromtoolAndCarriesTheFamilies) {
  std::string dir = testing::MakeTempDir("quotum-metrics-");
  auto server = StartServer(dir);
  HttpClient c(server->port());
  Tenant t = CreateTenant(c, "metrics", "starter");
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1000), Bearer(t.key)).status,
      200);
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status,
            429);
  ASSERT_EQ(c.Get("/nowhere").status, 404);
  auto r = c.Get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  for (const char* line : {
           "quotum_http_requests_total{route=\"/api/v2/quota/consume\",status=\"200\"} 1",
           "quotum_http_requests_total{route=\"/api/v2/quota/consume\",status=\"429\"} 1",
           "quotum_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
           "quotum_http_request_duration_seconds_count{route=\"/api/v2/quota/consume\","
           "status=\"200\"} 1",
           "quotum_http_request_duration_seconds_count{route=\"/api/v2/quota/consume\","
           "status=\"429\"} 1",
           "quotum_decisions_total{meter=\"messages_sent\",outcome=\"allowed\",rule=\"none\"} 1",
           "quotum_decisions_total{meter=\"messages_sent\",outcome=\"denied\",rule=\"messages_"
           "sent\"} 1",
           "# TYPE quotum_store_commit_duration_seconds histogram",
           "# TYPE quotum_store_commit_batch_requests histogram",
           "# TYPE quotum_commit_queue_depth gauge",
       }) {
    EXPECT_NE(r.body.find(line), std::string::npos) << line << "\n" << r.body;
  }
  const std::string file = dir + "/scrape.txt";
  std::ofstream(file) << r.body;
  const int rc = std::system(
      ("promtool check metrics < " + file + " > " + dir + "/promtool.out 2>&1").c_str());
  std::ifstream in(dir + "/promtool.out");
  std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_NE(rc, -1);
  EXPECT_EQ(WEXITSTATUS(rc), 0) << "promtool (from Debian's prometheus package, installed by "
                                   "scripts/install-deps.sh) rejected the scrape:\n"
                                << report;
  EXPECT_EQ(server->Stop(), 0);
}

}  // namespace
}  // namespace quotum::itest
