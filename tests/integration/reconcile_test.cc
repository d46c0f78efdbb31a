// Reconciliation over HTTP against the real binary, on the embedded backend
// and (scale-out/ReconcileHttpTest) on Redis + PostgreSQL: GET
// /admin/reconcile lists each hot counter beside its aggregate, finds a drift
// the test plants in the cold store behind the server's back, and flags it
// past 5 %; POST /admin/reconcile (the nightly sync, run now) repairs it
// embedded and leaves it reported in scale-out (docs/reconcile.md).
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "harness.h"

namespace quotum::itest {
namespace {

using testing::HttpResponse;

class ReconcileHttpTest : public OneServerSuite<ReconcileHttpTest> {
 public:
  static const std::string& DataDir() { return *dir_; }
};

// The row of `tenant`'s `meter` in a reconcile answer; null when absent.
boost::json::value RowOf(const HttpResponse& r, const std::string& tenant,
                         const std::string& meter) {
  const boost::json::value body = r.json();
  for (const auto& row : body.at("rows").as_array()) {
    if (row.at("tenant") == tenant.c_str() && row.at("meter") == meter.c_str()) return row;
  }
  return nullptr;
}

// GET /admin/reconcile once `tenant`'s `meter` has counter `counter` and
// aggregate `aggregate` (scale-out: the aggregate trails by a drain round).
HttpResponse ReconcileOnce(testing::HttpClient& c, const std::string& tenant,
                           const std::string& meter, uint64_t counter, uint64_t aggregate,
                           const std::string& query = "") {
  return GetEventually(c, "/admin/reconcile" + query, Admin(), [&](const HttpResponse& r) {
    if (r.status != 200) return false;
    const boost::json::value row = RowOf(r, tenant, meter);
    return row.is_object() && row.at("counter") == counter && row.at("aggregate") == aggregate;
  });
}

// A starter tenant that sent `sent` messages, whose messages_sent aggregate
// was then moved by `plant` behind the server's back.
Tenant TenantWithDrift(testing::HttpClient& c, const std::string& id, uint64_t sent,
                       int64_t plant) {
  Tenant t = CreateTenant(c, id, "starter");
  EXPECT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", sent), Bearer(t.key)).status,
      200);
  EXPECT_EQ(ReconcileOnce(c, t.id, "messages_sent", sent, sent).status, 200);
  const absl::Status planted =
      ExecColdStoreSql(ReconcileHttpTest::DataDir(),
                       absl::StrCat("UPDATE counters SET value=value+(", plant,
                                    ") WHERE tenant_id='", t.id, "' AND meter='messages_sent'"));
  EXPECT_TRUE(planted.ok()) << planted;
  return t;
}

TEST_F(ReconcileHttpTest, ACounterAndItsAggregateAgreeAfterDecisions) {
  auto c = Client();
  Tenant t = CreateTenant(c, "rec-agree", "starter");
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(
        c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 5), Bearer(t.key)).status,
        200);
  }
  HttpResponse r = ReconcileOnce(c, t.id, "messages_sent", 40, 40);
  ASSERT_EQ(r.status, 200) << r.body;
  const boost::json::value row = RowOf(r, t.id, "messages_sent");
  ASSERT_TRUE(row.is_object()) << r.body;
  EXPECT_EQ(row.at("counter"), 40) << row;
  EXPECT_EQ(row.at("aggregate"), 40) << row;
  EXPECT_EQ(row.at("drift"), 0);
  EXPECT_EQ(row.at("drift_percent").to_number<double>(), 0.0);
  EXPECT_EQ(row.at("flagged"), false);
  EXPECT_EQ(r.json().at("counters_from"), ScaleOut() ? "redis" : "memory");
  EXPECT_EQ(r.json().at("flag_percent"), 5);
  // api_calls counts the requests too; an untouched meter is not listed.
  EXPECT_TRUE(RowOf(r, t.id, "api_calls").is_object()) << r.body;
  EXPECT_TRUE(RowOf(r, t.id, "ai_tokens").is_null()) << r.body;
}

TEST_F(ReconcileHttpTest, APlantedDriftIsReportedFlaggedAndRepairedBySyncEmbedded) {
  auto c = Client();
  // 11 units lost from the aggregate: 5.5 % of the counter.
  Tenant t = TenantWithDrift(c, "rec-drift", 200, -11);
  HttpResponse r = ReconcileOnce(c, t.id, "messages_sent", 200, 189);
  ASSERT_EQ(r.status, 200) << r.body;
  boost::json::value row = RowOf(r, t.id, "messages_sent");
  EXPECT_EQ(row.at("drift"), 11) << row;
  EXPECT_EQ(row.at("drift_percent").to_number<double>(), 5.5) << row;
  EXPECT_EQ(row.at("flagged"), true) << row;
  EXPECT_GE(r.json().at("flagged").to_number<int64_t>(), 1);

  // flagged=true lists only flagged rows: this one, not the tenant's api_calls.
  r = c.Get("/admin/reconcile?flagged=true", Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(RowOf(r, t.id, "messages_sent").is_object()) << r.body;
  EXPECT_TRUE(RowOf(r, t.id, "api_calls").is_null()) << r.body;
  const boost::json::value listed = r.json();
  for (const auto& each : listed.at("rows").as_array()) EXPECT_EQ(each.at("flagged"), true);

  // The nightly sync, run now.
  r = c.Post("/admin/reconcile", "", Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  row = RowOf(r, t.id, "messages_sent");
  ASSERT_TRUE(row.is_object()) << r.body;
  if (ScaleOut()) {
    // The facts drain owns PostgreSQL's aggregates: reported, not overwritten.
    EXPECT_EQ(row.at("repaired"), false) << row;
    r = c.Get("/admin/reconcile", Admin());
    EXPECT_EQ(RowOf(r, t.id, "messages_sent").at("aggregate"), 189) << r.body;
  } else {
    EXPECT_EQ(row.at("repaired"), true) << row;
    r = c.Get("/admin/reconcile", Admin());
    row = RowOf(r, t.id, "messages_sent");
    EXPECT_EQ(row.at("aggregate"), 200) << row;
    EXPECT_EQ(row.at("drift"), 0) << row;
    EXPECT_TRUE(r.json().at("last_sync").is_object()) << r.body;
  }
  const std::string metrics = c.Get("/metrics").body;
  EXPECT_NE(metrics.find("\nquotum_reconcile_syncs_total "), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nquotum_reconcile_flagged_total "), std::string::npos) << metrics;
  // Later decisions add to the repaired aggregate.
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 7), Bearer(t.key)).status,
            200);
  EXPECT_EQ(ReconcileOnce(c, t.id, "messages_sent", 207, ScaleOut() ? 196 : 207).status, 200);
}

TEST_F(ReconcileHttpTest, AnAggregateAheadOfTheCounterIsANegativeDrift) {
  auto c = Client();
  Tenant t = TenantWithDrift(c, "rec-ahead", 100, 5);
  HttpResponse r = ReconcileOnce(c, t.id, "messages_sent", 100, 105);
  ASSERT_EQ(r.status, 200) << r.body;
  const boost::json::value row = RowOf(r, t.id, "messages_sent");
  EXPECT_EQ(row.at("drift"), -5) << row;
  EXPECT_EQ(row.at("drift_percent").to_number<double>(), 4.76) << row;
  EXPECT_EQ(row.at("flagged"), false) << "4.76 % is under the 5 % flag";
}

TEST_F(ReconcileHttpTest, BadQueriesAndTenantsAreRefused) {
  auto c = Client();
  HttpResponse r = c.Get("/admin/reconcile?flagged=maybe", Admin());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json().at("code"), "invalid_query");
  EXPECT_EQ(c.Post("/admin/reconcile?flagged=1", "", Admin()).status, 400);
  EXPECT_EQ(c.Get("/admin/reconcile").status, 401);
  Tenant t = CreateTenant(c, "rec-tenant", "starter");
  EXPECT_EQ(c.Get("/admin/reconcile", Bearer(t.key)).status, 403);
}

/// Whether `path` contains `text` within `patience`.
bool LogSays(const std::string& path, const std::string& text,
             std::chrono::milliseconds patience = std::chrono::seconds(10)) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  for (;;) {
    std::ifstream in(path);
    std::stringstream all;
    all << in.rdbuf();
    if (all.str().find(text) != std::string::npos) return true;
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// A period that ended two hours ago (its late-event grace is over), with 42
// units planted in the cold store's counters: the scheduled jobs close it
// when the server starts, and history then reads it from usage_aggregates,
// so deleting every counter row of the period changes nothing.
TEST(PeriodCloseHttpTest, AnEndedPeriodIsClosedIntoTheAggregatesWhenItsGraceIsOver) {
  const std::string dir = testing::MakeTempDir("quotum-close-");
  auto server = StartServer(dir);
  testing::HttpClient c(server->port());
  const absl::Time anchor = AnchorOfAPeriodBegun(absl::Hours(2));
  Tenant t = CreateTenant(c, "closing", "starter", FormatRfc3339(anchor));
  const absl::Time begun = PeriodAt(anchor, BillingInterval{}, absl::Now()).start;
  const int64_t closed_start =
      absl::ToUnixSeconds(PeriodAt(anchor, BillingInterval{}, begun - absl::Seconds(1)).start);
  // Planted while the server is stopped: a running one's start-up close,
  // late under a sanitizer, could close it before the restart below.
  EXPECT_EQ(server->Stop(), 0);
  ASSERT_EQ(ExecColdStoreSql(dir, absl::StrCat("INSERT INTO counters(tenant_id,meter,period_start,"
                                               "value) VALUES('closing','messages_sent',",
                                               closed_start, ",42)")),
            absl::OkStatus());
  server = StartServer(dir, {}, dir + "/log");
  testing::HttpClient again(server->port());
  ASSERT_TRUE(LogSays(dir + "/log", "quotum: closed 1 billing periods"));
  ASSERT_EQ(ExecColdStoreSql(dir, absl::StrCat("DELETE FROM counters WHERE tenant_id='closing' "
                                               "AND period_start=",
                                               closed_start)),
            absl::OkStatus());
  auto h = again.Get("/api/v2/usage/history?months=2", Bearer(t.key));
  ASSERT_EQ(h.status, 200) << h.body;
  const boost::json::value periods = h.json().at("periods");
  ASSERT_EQ(periods.as_array().size(), 2u) << h.body;
  EXPECT_EQ(periods.at(1).at("messages_sent"), 42) << h.body;
  EXPECT_EQ(periods.at(1).at("status"), "closed") << h.body;
  EXPECT_EQ(server->Stop(), 0);
}

}  // namespace
}  // namespace quotum::itest
