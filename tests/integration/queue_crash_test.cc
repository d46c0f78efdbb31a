// The message queue under kill -9: scheduled and bulk sends while the
// releaser hands messages to a real upstream (the http provider), SIGKILL at
// random moments, restart on the same data dir. In the end every message
// acknowledged (202) is stored and sent, every message is charged once, the
// upstream saw nothing Quotum does not hold, and a message reached it twice
// only when a kill fell between its hand-off and its `sent` mark (the
// releaser hands over one message at a time, so at most once per kill).
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "harness.h"
#include "support/http_receiver.h"

namespace quotum::itest {
namespace {

using testing::HttpClient;
using testing::Receiver;

constexpr int kQueueKills = 6;

// A plan whose limits and per-session rule stay out of the way: the queue's
// bookkeeping, not enforcement, is under test.
constexpr char kToml[] = R"(
[rate_limit_profiles.fast]
general = 1000000
messages = 1000000
sessions = 1000
[plans.fast]
display_name = "Fast"
price_cents = 100
rate_limit_profile = "fast"
[plans.fast.limits]
messages_sent = 1000000
sessions_active = 5
)";

std::string BulkOf(int round, int n) {
  std::string list;
  for (int i = 0; i < n; ++i)
    absl::StrAppend(&list, i ? "," : "", "\"+1555", 2000000 + round * 1000 + i, "\"");
  return absl::StrCat(R"({"session":"s1","text":"r)", round, R"(","mode":"queue","recipients":[)",
                      list, "]}");
}

std::string ScheduleSoon() {
  return absl::StrCat(R"({"session":"s1","to":"+15550100","text":"later","send_at":")",
                      FormatRfc3339(absl::Now() + absl::Seconds(1)), R"("})");
}

/// Sends scheduled and bulk messages until `stop`; records every id a 202 acknowledged.
void Load(uint16_t port, const Tenant& t, int round, std::atomic<bool>& stop,
          std::set<std::string>& acked, std::mutex& mu) {
  HttpClient c(port);
  for (int i = 0; !stop.load(); ++i) {
    const bool bulk = i % 2 == 0;
    auto r = bulk ? c.Post("/api/v2/messages/bulk", BulkOf(round, 10), Bearer(t.key))
                  : c.Post("/api/v2/messages/schedule", ScheduleSoon(), Bearer(t.key));
    if (r.status != 202) continue;  // killed mid-request (or a refusal, checked below)
    std::lock_guard<std::mutex> lock(mu);
    const boost::json::value j = r.json();
    if (!bulk) {
      acked.insert(std::string(j.at("id").as_string()));
      continue;
    }
    for (const auto& m : j.at("messages").as_array()) {
      acked.insert(std::string(m.at("id").as_string()));
    }
  }
}

size_t Unfinished(HttpClient& c, const Tenant& t) {
  size_t n = 0;
  for (const char* status : {"queued", "releasing", "released"}) {
    auto r = c.Get(absl::StrCat("/api/v2/messages?limit=500&status=", status), Bearer(t.key));
    n += r.status == 200 ? r.json().at("messages").as_array().size() : 1;
  }
  return n;
}

TEST(QueueCrash, KillsLoseNoQueuedMessageAndSendNoneTwiceUnlessCaughtMidHandOff) {
  Receiver upstream([](const Receiver::Request& r) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a hand-off takes a moment
    Receiver::Response response(boost::beast::http::status::ok, r.version());
    response.body() = "{}";
    return response;
  });
  const std::string dir = testing::MakeTempDir("quotum-queue-crash-");
  const std::string toml = absl::StrCat(kToml, "[delivery]\nprovider = \"http\"\nurl = \"",
                                        upstream.Url("/send"), "\"\n");
  auto server = StartServerWithToml(dir, toml);
  ASSERT_GT(server->port(), 0);
  Tenant t;
  {
    HttpClient c(server->port());
    t = CreateTenant(c, "qcrash", "fast");
    StartSession(c, t, "s1");
  }
  std::mt19937 rng(std::random_device{}());
  std::set<std::string> acked;
  std::mutex mu;
  for (int round = 1; round <= kQueueKills; ++round) {
    std::atomic<bool> stop{false};
    std::thread load([&, port = server->port()] { Load(port, t, round, stop, acked, mu); });
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(150, 600)(rng)));
    server->Kill9();
    stop = true;
    load.join();
    server = StartServerWithToml(dir, toml);
    ASSERT_GT(server->port(), 0) << "round " << round << ": the store did not open";
  }
  HttpClient c(server->port());
  for (int i = 0; i < 300 && Unfinished(c, t) > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(Unfinished(c, t), 0u);

  // Every acknowledged message is stored and sent.
  size_t missing = 0, unsent = 0;
  for (const std::string& id : acked) {
    auto r = c.Get("/api/v2/messages/" + id, Bearer(t.key));
    if (r.status != 200) ++missing;
    if (r.status == 200 && r.json().at("status") != "sent") ++unsent;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(unsent, 0u);
  // Every stored message was charged once (some committed without their 202).
  size_t stored = 0;
  std::string cursor;
  for (;;) {
    auto r = c.Get("/api/v2/messages?limit=500" + cursor, Bearer(t.key));
    ASSERT_EQ(r.status, 200) << r.body;
    stored += r.json().at("messages").as_array().size();
    if (r.json().at("next_cursor").is_null()) break;
    cursor = "&cursor=" + std::string(r.json().at("next_cursor").as_string());
  }
  EXPECT_GE(stored, acked.size());
  EXPECT_EQ(UsageField(c, t, "messages_sent"), stored);
  // The upstream saw only stored messages, each once but for a kill mid-hand-off.
  std::map<std::string, int> deliveries;
  for (const auto& r : upstream.requests()) ++deliveries[std::string(r["Idempotency-Key"])];
  size_t twice = 0;
  for (const auto& [id, n] : deliveries) {
    EXPECT_EQ(c.Get("/api/v2/messages/" + id, Bearer(t.key)).status, 200) << id;
    twice += static_cast<size_t>(n - 1);
  }
  EXPECT_EQ(deliveries.size(), stored);
  EXPECT_LE(twice, static_cast<size_t>(kQueueKills));
  EXPECT_EQ(server->Stop(), 0);
  std::printf(
      "queue crash: %d kills; %zu messages acknowledged, %zu stored, %zu hand-offs, "
      "%zu repeated after a kill\n",
      kQueueKills, acked.size(), stored, upstream.requests().size(), twice);
  EXPECT_GT(acked.size(), 0u);
}

}  // namespace
}  // namespace quotum::itest
