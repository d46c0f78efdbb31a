// Scale-out mode (`quotum serve --redis-url --postgres-url`) against a real
// redis-server and PostgreSQL started here: instances share tenants and keys
// through PostgreSQL and decide together in Redis; Redis going away and
// coming back is handled without a restart.
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "harness.h"
#include "quotum/testing/http_client.h"
#include "quotum/testing/postgres_server.h"
#include "quotum/testing/raw_connection.h"
#include "quotum/testing/redis_server.h"
#include "quotum/testing/server_process.h"
#include "support/http_receiver.h"

namespace quotum::itest {
namespace {

using testing::HttpClient;

class ScaleOutTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    postgres_ = std::make_unique<testing::PostgresServer>();
    postgres_error_ = postgres_->Start() ? "" : postgres_->error();
  }
  static void TearDownTestSuite() { postgres_.reset(); }

  void SetUp() override {
    ASSERT_TRUE(postgres_error_.empty()) << postgres_error_;
    ASSERT_TRUE(postgres_->ResetDatabase("quotum")) << postgres_->error();
    ASSERT_TRUE(redis_.Start()) << redis_.error();
    redis_url_ = "redis://127.0.0.1:" + std::to_string(redis_.port());
    dir_ = testing::MakeTempDir("quotum-scale-out");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  /// An instance on the shared Redis and PostgreSQL; `name` is its own data dir.
  std::unique_ptr<testing::ServerProcess> Instance(const std::string& name) {
    return StartServer(dir_ + "/" + name,
                       {"--redis-url", redis_url_, "--postgres-url", postgres_->url()});
  }

  /// An instance as Instance() does, whose config ends with `storage` (a
  /// [storage] table's keys).
  std::unique_ptr<testing::ServerProcess> InstanceWithStorage(const std::string& name,
                                                              const std::string& storage) {
    return InstanceWithConfig(name, "\n[storage]\n" + storage);
  }

  /// An instance on the example config with `from` replaced by `to` (once),
  /// then `extra` appended.
  std::unique_ptr<testing::ServerProcess> InstanceWithConfig(const std::string& name,
                                                             const std::string& extra,
                                                             const std::string& from = "",
                                                             const std::string& to = "") {
    std::ifstream in(QUOTUM_EXAMPLE_CONFIG);
    std::stringstream read;
    read << in.rdbuf();
    std::string text = read.str();
    if (!from.empty()) {
      const size_t at = text.find(from);
      EXPECT_NE(at, std::string::npos) << from;
      if (at != std::string::npos) text.replace(at, from.size(), to);
    }
    const std::string config = dir_ + "/" + name + ".toml";
    std::ofstream(config) << text << extra;
    testing::ServerProcess::Options o;
    o.binary = BinaryPath();
    o.config = config;
    o.data_dir = dir_ + "/" + name;
    o.admin_key = kAdminKey;
    o.extra_args = {"--redis-url", redis_url_, "--postgres-url", postgres_->url()};
    auto s = std::make_unique<testing::ServerProcess>(o);
    EXPECT_TRUE(s->Start()) << s->error();
    return s;
  }

  inline static std::unique_ptr<testing::PostgresServer> postgres_;
  inline static std::string postgres_error_;
  testing::RedisServer redis_;
  std::string redis_url_;
  std::string dir_;
};

/// A tenant whose messages_sent limit is 1,000 and whose key's general rule
/// is out of the way.
Tenant RaceTenant(HttpClient& c) {
  Tenant t = CreateTenant(c, "race", "starter");  // messages_sent limit 1000
  SetKeyLimits(c, t, 1000000);
  return t;
}

/// Today's units of `meter` in the daily report (PostgreSQL's rows, which
/// the facts drain fills from Redis' stream), once they reach `expected` or
/// after `patience`, whichever is first.
uint64_t DailyToday(HttpClient& c, const Tenant& t, const char* meter, uint64_t expected,
                    absl::Duration patience = absl::Seconds(10)) {
  const absl::Time give_up = absl::Now() + patience;
  uint64_t seen = 0;
  do {
    auto r = c.Get("/api/v2/usage/daily?days=1", Bearer(t.key));
    if (r.status == 200 && r.json().is_array() && !r.json().as_array().empty()) {
      seen = r.json().as_array()[0].at(meter).to_number<uint64_t>();
      if (seen >= expected) return seen;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (absl::Now() < give_up);
  return seen;
}

// Two instances on the same Redis and PostgreSQL, the tenant made through one,
// 64 clients split across both, a limit of 1,000: exactly 1,000 admitted,
// and both instances report 1,000 used.
TEST_F(ScaleOutTest, TwoInstancesAdmitExactlyTheLimitTogether) {
  auto a = Instance("a");
  auto b = Instance("b");
  Tenant t;
  {
    HttpClient c(a->port());
    t = RaceTenant(c);
  }
  std::atomic<int> ok{0}, limited{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 64; ++i) {
    threads.emplace_back([&, i] {
      HttpClient c(i % 2 == 0 ? a->port() : b->port());
      for (int n = 0; n < 20; ++n) {
        auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key));
        (r.status == 200 ? ok : r.status == 429 ? limited : other)++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 1000);
  EXPECT_EQ(limited.load(), 64 * 20 - 1000);
  EXPECT_EQ(other.load(), 0);
  HttpClient ca(a->port()), cb(b->port());
  EXPECT_EQ(UsageField(ca, t, "messages_sent"), 1000u);
  EXPECT_EQ(UsageField(cb, t, "messages_sent"), 1000u);
  // Both instances drain the stream; each entry reaches PostgreSQL once.
  EXPECT_EQ(DailyToday(ca, t, "messages_sent", 1000), 1000u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(DailyToday(cb, t, "messages_sent", 1001, absl::ZeroDuration()), 1000u);
  // 1,000 decisions on two instances crossed 80, 90 and 100 % once each.
  for (HttpClient* c : {&ca, &cb}) {
    auto r = c->Get("/api/v2/alerts", Bearer(t.key));
    ASSERT_EQ(r.status, 200) << r.body;
    std::multiset<int64_t> thresholds;
    const boost::json::value alerts = r.json();
    for (const auto& a : alerts.at("alerts").as_array()) {
      thresholds.insert(a.at("threshold").as_int64());
      // The decision that crossed t% charged one unit: its counter is exactly t% of 1,000.
      EXPECT_EQ(a.at("value").as_int64(), a.at("threshold").as_int64() * 10) << a;
    }
    EXPECT_EQ(thresholds, (std::multiset<int64_t>{80, 90, 100})) << r.body;
  }
}

// Redis stops mid-run: decisions fail closed (503 store_unavailable),
// usage/current answers from the aggregates marked "aggregate", /readyz says
// which dependency is down. Redis comes back: everything recovers without a
// restart, and nothing acknowledged was lost.
TEST_F(ScaleOutTest, RedisDownFailsClosedReadsFallBackAndRecoveryIsAutomatic) {
  auto server = Instance("a");
  HttpClient c(server->port());
  Tenant t = CreateTenant(c, "down", "starter");
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(
        c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 2), Bearer(t.key)).status,
        200);
  }
  // The drain has moved the charges into PostgreSQL's aggregates.
  ASSERT_EQ(DailyToday(c, t, "messages_sent", 10), 10u);
  ASSERT_EQ(redis_.Stop(), 0);
  auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.json().at("code"), "store_unavailable");
  r = c.Get("/api/v2/usage/current", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("source"), "aggregate");
  EXPECT_EQ(r.json().at("messages_sent"), 10);
  r = c.Get("/readyz");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.json().at("dependencies").at("redis"), "down");
  EXPECT_EQ(r.json().at("dependencies").at("store"), "up");

  ASSERT_TRUE(redis_.Start()) << redis_.error();
  r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  r = c.Get("/api/v2/usage/current", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("source"), "live");
  EXPECT_EQ(r.json().at("messages_sent"), 11);
  EXPECT_EQ(c.Get("/readyz").status, 200);
}

// Redis restarts empty (no AOF): the counters are rebuilt from what the cold
// store holds before anything is decided, so a tenant at its limit stays there.
TEST_F(ScaleOutTest, CountersLostByRedisAreRebuiltFromTheColdStore) {
  testing::RedisServer::Options no_aof;
  no_aof.appendonly = false;
  testing::RedisServer volatile_redis(no_aof);
  ASSERT_TRUE(volatile_redis.Start()) << volatile_redis.error();
  auto server = StartServer(
      dir_ + "/a", {"--redis-url", "redis://127.0.0.1:" + std::to_string(volatile_redis.port()),
                    "--postgres-url", postgres_->url()});
  HttpClient c(server->port());
  Tenant t = CreateTenant(c, "lost", "starter");  // messages_sent limit 1000
  SetKeyLimits(c, t, 1000000);
  auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 998), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  // The charge reaches the cold store through the facts stream (a tick).
  ASSERT_EQ(DailyToday(c, t, "messages_sent", 998), 998u);
  ASSERT_EQ(volatile_redis.Stop(), 0);
  ASSERT_TRUE(volatile_redis.Start()) << volatile_redis.error();
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 998u);
  r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 5), Bearer(t.key));
  EXPECT_EQ(r.status, 429) << r.body;
  r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 2), Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 1000u);
}

/// PATCHes session `id`'s status through `c`.
testing::HttpResponse SetStatus(HttpClient& c, const Tenant& t, const std::string& id,
                                const std::string& status) {
  return c.Send("PATCH", "/api/v2/sessions/" + id, R"({"status":")" + status + R"("})",
                Bearer(t.key));
}

// Sessions and groups live in Redis, shared by every instance: made on one,
// seen, started, sent through and stopped on the other; counted once against
// the plan's sessions_active and groups_active.
TEST_F(ScaleOutTest, SessionsAndGroupsAreOneSetAcrossInstances) {
  auto a = Instance("a");
  auto b = Instance("b");
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(ca, "sess", "pro");  // sessions_active 3, groups_active 20
  SetKeyLimits(ca, t, 1000000);
  auto r = ca.Post("/api/v2/sessions", R"({"id":"s1","phone":"+15550001"})", Bearer(t.key));
  ASSERT_EQ(r.status, 201) << r.body;
  r = cb.Get("/api/v2/sessions/s1", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("phone"), "+15550001");
  EXPECT_EQ(cb.Post("/api/v2/sessions", R"({"id":"s1"})", Bearer(t.key)).status, 409);
  // Not working yet: a send through the other instance is refused.
  const std::string send = R"({"session":"s1","to":"+15550009"})";
  EXPECT_EQ(ca.Post("/api/v2/messages/send", send, Bearer(t.key)).status, 409);
  ASSERT_EQ(SetStatus(cb, t, "s1", "working").status, 200);
  r = ca.Post("/api/v2/messages/send", send, Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  // Three working sessions in all, whichever instance started them.
  StartSession(ca, t, "s2");
  StartSession(cb, t, "s3");
  ASSERT_EQ(cb.Post("/api/v2/sessions", R"({"id":"s4"})", Bearer(t.key)).status, 201);
  r = SetStatus(ca, t, "s4", "working");
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.json().at("meter"), "sessions_active") << r.body;
  EXPECT_EQ(UsageField(ca, t, "sessions_active"), 3u);
  EXPECT_EQ(UsageField(cb, t, "sessions_active"), 3u);
  // Stopped on one instance: the other's next send through it is refused,
  // and the freed lease lets s4 start there.
  ASSERT_EQ(SetStatus(cb, t, "s1", "stopped").status, 200);
  EXPECT_EQ(ca.Post("/api/v2/messages/send", send, Bearer(t.key)).status, 409);
  EXPECT_EQ(SetStatus(ca, t, "s4", "working").status, 200);
  ASSERT_EQ(ca.Send("DELETE", "/api/v2/sessions/s2", "", Bearer(t.key)).status, 200);
  EXPECT_EQ(cb.Get("/api/v2/sessions/s2", Bearer(t.key)).status, 404);
  EXPECT_EQ(UsageField(cb, t, "sessions_active"), 2u);
  ASSERT_EQ(cb.Get("/api/v2/sessions", Bearer(t.key)).json().at("sessions").as_array().size(), 3u);
  // Groups: 20 in all across both instances, then one more is refused.
  for (int i = 0; i < 20; ++i) {
    HttpClient& c = i % 2 == 0 ? ca : cb;
    const std::string body = R"({"id":"g)" + std::to_string(i) + R"("})";
    ASSERT_EQ(c.Post("/api/v2/groups", body, Bearer(t.key)).status, 201) << i;
  }
  EXPECT_EQ(ca.Post("/api/v2/groups", R"({"id":"g20"})", Bearer(t.key)).status, 429);
  EXPECT_EQ(ca.Post("/api/v2/groups", R"({"id":"g3"})", Bearer(t.key)).status, 409);
  EXPECT_EQ(UsageField(ca, t, "groups_active"), 20u);
  ASSERT_EQ(cb.Send("DELETE", "/api/v2/groups/g3", "", Bearer(t.key)).status, 200);
  EXPECT_EQ(UsageField(ca, t, "groups_active"), 19u);
  EXPECT_EQ(ca.Get("/api/v2/groups", Bearer(t.key)).json().at("groups").as_array().size(), 19u);
  // The subscribers gauge too.
  EXPECT_EQ(ca.Send("PUT", "/api/v2/subscribers/count", R"({"count":40})", Bearer(t.key)).status,
            200);
  auto usage = cb.Get("/api/v2/usage/current", Bearer(t.key));
  ASSERT_EQ(usage.status, 200) << usage.body;
  EXPECT_EQ(usage.json().at("meters").at("subscribers").at("used"), 40) << usage.body;
}

// A lease that runs out is stopped once, whichever instance looks first, with
// one event; sessions and groups lost by Redis come back from PostgreSQL.
TEST_F(ScaleOutTest, LapsedLeasesStopOnceAndLostLeasesComeBackFromTheColdStore) {
  testing::RedisServer::Options no_aof;
  no_aof.appendonly = false;
  testing::RedisServer volatile_redis(no_aof);
  ASSERT_TRUE(volatile_redis.Start()) << volatile_redis.error();
  redis_url_ = "redis://127.0.0.1:" + std::to_string(volatile_redis.port());
  const std::string ttl = "session_lease_ttl_seconds = 300";
  auto a = InstanceWithConfig("a", "", ttl, "session_lease_ttl_seconds = 3");
  auto b = InstanceWithConfig("b", "", ttl, "session_lease_ttl_seconds = 3");
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(ca, "lapse", "pro");
  SetKeyLimits(ca, t, 1000000);
  StartSession(ca, t, "short");
  StartSession(cb, t, "kept");
  ASSERT_EQ(ca.Post("/api/v2/groups", R"({"id":"g1"})", Bearer(t.key)).status, 201);
  for (int i = 0; i < 8; ++i) {  // "kept" heartbeats; "short" does not
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ASSERT_EQ(cb.Post("/api/v2/sessions/kept/heartbeat", "", Bearer(t.key)).status, 200);
  }
  // Both instances look at once: one stop, one event.
  std::thread other([&] {
    HttpClient c(b->port());
    c.Get("/api/v2/sessions", Bearer(t.key));
  });
  auto r = ca.Get("/api/v2/sessions/short", Bearer(t.key));
  other.join();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("status"), "stopped");
  EXPECT_EQ(UsageField(cb, t, "sessions_active"), 1u);
  int expired = 0;
  for (int attempt = 0; attempt < 50 && expired == 0; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto events = ca.Get("/api/v2/events", Bearer(t.key));
    ASSERT_EQ(events.status, 200) << events.body;
    const boost::json::value body = events.json();
    expired = static_cast<int>(
        std::count_if(body.at("events").as_array().begin(), body.at("events").as_array().end(),
                      [](const auto& e) { return e.at("type") == "session.lease_expired"; }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a duplicate would show by now
  const boost::json::value later = cb.Get("/api/v2/events", Bearer(t.key)).json();
  const boost::json::array& events = later.at("events").as_array();
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          [](const auto& e) { return e.at("type") == "session.lease_expired"; }),
            1);
  // Redis restarts empty: the sessions and the group come back from PostgreSQL
  // (the last heartbeat first reaches it through the stream).
  ASSERT_EQ(cb.Post("/api/v2/sessions/kept/heartbeat", "", Bearer(t.key)).status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_EQ(volatile_redis.Stop(), 0);
  ASSERT_TRUE(volatile_redis.Start()) << volatile_redis.error();
  r = cb.Get("/api/v2/sessions", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  std::map<std::string, std::string> status;
  const boost::json::value listed = r.json();
  for (const auto& s : listed.at("sessions").as_array()) {
    status[std::string(s.at("id").as_string())] = std::string(s.at("status").as_string());
  }
  EXPECT_EQ(status,
            (std::map<std::string, std::string>{{"kept", "working"}, {"short", "stopped"}}));
  EXPECT_EQ(ca.Get("/api/v2/groups", Bearer(t.key)).json().at("groups").as_array().size(), 1u);
  EXPECT_EQ(
      ca.Post("/api/v2/messages/send", R"({"session":"kept","to":"+15550009"})", Bearer(t.key))
          .status,
      200);
}

TEST_F(ScaleOutTest, IdempotentRetriesOnAnotherInstanceCountOnce) {
  auto a = Instance("a");
  auto b = Instance("b");
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(ca, "idem", "pro");
  auto h = Bearer(t.key);
  h["Idempotency-Key"] = "order-7";
  auto first = ca.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 3), h);
  ASSERT_EQ(first.status, 200) << first.body;
  auto retry = cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 3), h);
  ASSERT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(retry.json().at("consumed"), 3);
  EXPECT_EQ(UsageField(cb, t, "messages_sent"), 3u);
  auto reused = cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 4), h);
  EXPECT_EQ(reused.status, 422) << reused.body;
}

// A tenant made and used through b only, after a started: a's reconcile
// report (and with it the jobs that go over every tenant: forecasts,
// reports) takes it in from the shared store and reads its Redis counter.
TEST_F(ScaleOutTest, AnInstanceReconcilesATenantMadeOnAnother) {
  auto a = Instance("a");
  // Past a's first rounds of scheduled jobs (which take in every tenant there is then).
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto b = Instance("b");
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(cb, "made-on-b", "pro");
  ASSERT_EQ(
      cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 42), Bearer(t.key)).status,
      200);
  auto r = GetEventually(ca, "/admin/reconcile", Admin(), [](const testing::HttpResponse& r) {
    return r.status == 200 &&
           r.body.find(R"("tenant":"made-on-b","meter":"messages_sent")") != std::string::npos &&
           r.body.find(R"("aggregate":42)") != std::string::npos;
  });
  ASSERT_EQ(r.status, 200) << r.body;
  const boost::json::value body = r.json();
  bool seen = false;
  for (const auto& row : body.at("rows").as_array()) {
    if (row.at("tenant") != "made-on-b" || row.at("meter") != "messages_sent") continue;
    seen = true;
    EXPECT_EQ(row.at("counter"), 42) << row;
    EXPECT_EQ(row.at("aggregate"), 42) << row;
    EXPECT_EQ(row.at("flagged"), false) << row;
  }
  EXPECT_TRUE(seen) << r.body;
  EXPECT_EQ(body.at("counters_from"), "redis");
}

TEST_F(ScaleOutTest, AdminReadsAndStreamsSeeATenantMadeOnAnotherInstance) {
  auto a = Instance("a");
  auto b = Instance("b");
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(cb, "admin-on-b", "starter");
  ASSERT_EQ(
      cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 700), Bearer(t.key)).status,
      200);
  // a never saw this tenant's key: the admin's reads take it in from the store.
  auto r = ca.Get("/admin/tenants/admin-on-b", Admin());
  EXPECT_EQ(r.status, 200) << r.body;
  r = ca.Get("/api/v2/usage/current", {{"X-API-Key", kAdminKey}, {"X-Quotum-Tenant", t.id}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("messages_sent"), 700) << r.body;  // the shared counter, read through a
  r = ca.Get("/admin/risk?limit=5", Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("id":"admin-on-b")"), std::string::npos) << r.body;
  // A stream on a sees what b decides (it reads the shared counters).
  testing::RawConnection conn(a->port());
  ASSERT_TRUE(conn.Send("GET /api/v2/usage/stream HTTP/1.1\r\nHost: x\r\nX-API-Key: " + t.key +
                        "\r\n\r\n"));
  std::string got;
  ASSERT_TRUE(conn.ReadUntil(got, "\"used\":700", 0, std::chrono::milliseconds(5000))) << got;
  const size_t before = got.size();
  ASSERT_EQ(cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 5), Bearer(t.key)).status,
            200);
  EXPECT_TRUE(conn.ReadUntil(got, "\"used\":705", before, std::chrono::milliseconds(5000)))
      << got.substr(before);
}

// PostgreSQL stops: decisions go on (Redis holds them; keys this instance
// knows keep working), /readyz names the store as down; PostgreSQL comes
// back: no restart needed.
TEST_F(ScaleOutTest, PostgresDownLeavesDecisionsGoingOn) {
  auto server = Instance("a");
  HttpClient c(server->port());
  Tenant t = CreateTenant(c, "pgdown", "starter");
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status,
            200);
  ASSERT_EQ(postgres_->Stop(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the key recheck
  auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 2), Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  r = c.Get("/readyz");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.json().at("dependencies").at("store"), "down");
  EXPECT_EQ(r.json().at("dependencies").at("redis"), "up");
  ASSERT_TRUE(postgres_->Start()) << postgres_->error();
  EXPECT_EQ(c.Get("/readyz").status, 200);
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 3u);
  // What was decided while PostgreSQL was down waited in Redis' stream.
  EXPECT_EQ(DailyToday(c, t, "messages_sent", 3), 3u);
}

// The fail-open policy: while Redis is down, consumes are admitted unchecked
// (marked fail_open, remaining unknown) and recorded in PostgreSQL; once
// Redis is back the sweep counts them into Redis once, and they reach the
// reports through the facts stream.
TEST_F(ScaleOutTest, FailOpenAdmitsWhileRedisIsDownAndReconcilesOnceItIsBack) {
  auto server =
      InstanceWithStorage("open", "redis_unavailable = \"fail_open\"\nfacts_sweep_seconds = 1\n");
  HttpClient c(server->port());
  Tenant t = RaceTenant(c);  // messages_sent limit 1,000
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 2), Bearer(t.key)).status,
            200);
  ASSERT_EQ(DailyToday(c, t, "messages_sent", 2), 2u);
  ASSERT_EQ(redis_.Stop(), 0);
  auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 3), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("fail_open"), true);
  EXPECT_TRUE(r.json().at("remaining").is_null()) << r.body;
  EXPECT_EQ(r.json().at("consumed"), 3);
  EXPECT_NE(c.Get("/metrics").body.find("quotum_fail_open_decisions_total 1"), std::string::npos);
  // A check fails open too, charging nothing.
  r = c.Post("/api/v2/quota/check", ConsumeBody("messages_sent", 1), Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("consumed"), 0);

  ASSERT_TRUE(redis_.Start()) << redis_.error();
  EXPECT_EQ(DailyToday(c, t, "messages_sent", 5), 5u);
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 5u);
  // Counted once: 995 more fit, the next does not.
  r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 995), Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status,
            429);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // another sweep: nothing again
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 1000u);
  EXPECT_NE(c.Get("/metrics").body.find("quotum_fail_open_reconciled_total 2"), std::string::npos);
}

/// Runs `quotum ARGS...`; returns its exit status and stdout.
std::pair<int, std::string> RunQuotum(const std::string& args) {
  std::string out;
  FILE* p = popen((BinaryPath() + " " + args + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, ""};
  char buf[256];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_F(ScaleOutTest, MigrateBringsAnEmptyDatabaseToTheSchemaOnce) {
  const std::string url = postgres_->CreateDatabase();
  ASSERT_FALSE(url.empty()) << postgres_->error();
  auto [status, out] = RunQuotum("migrate --postgres-url " + url);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("schema version 0 -> "), std::string::npos) << out;
  std::tie(status, out) = RunQuotum("migrate --postgres-url " + url);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out.find("schema version 0 -> "), std::string::npos) << out;
  std::tie(status, out) = RunQuotum("migrate --postgres-url postgresql://nobody@127.0.0.1:1/x");
  EXPECT_NE(status, 0) << out;
}

// An embedded deployment moved to scale-out mode: its tenant, key and usage
// carry over (the Redis counters are rebuilt from PostgreSQL's on the first
// request), the limit still holds, and a second move into the same database
// is refused.
TEST_F(ScaleOutTest, MigrateFromSqliteMovesAnEmbeddedDeployment) {
  const std::string embedded = dir_ + "/embedded";
  Tenant t;
  {
    auto server = StartServer(embedded);
    HttpClient c(server->port());
    t = CreateTenant(c, "moved", "starter");  // messages_sent limit 1000
    auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 995), Bearer(t.key));
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(server->Stop(), 0);
  }
  const std::string args =
      "migrate --from-sqlite " + embedded + " --postgres-url " + postgres_->url();
  auto [status, out] = RunQuotum(args);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("tenants 1, api_keys 1, "), std::string::npos) << out;
  {
    auto server = Instance("a");
    HttpClient c(server->port());
    EXPECT_EQ(UsageField(c, t, "messages_sent"), 995u);
    auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 5), Bearer(t.key));
    EXPECT_EQ(r.status, 200) << r.body;
    r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key));
    EXPECT_EQ(r.status, 429) << r.body;
  }
  std::tie(status, out) = RunQuotum(args);
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("already holds Quotum data"), std::string::npos) << out;
  std::tie(status, out) =
      RunQuotum("migrate --from-sqlite " + dir_ + "/nowhere --postgres-url " + postgres_->url());
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("is not a directory"), std::string::npos) << out;
}

// What one instance changes, the other applies on its next request (within
// the one-second key recheck): a new key works there, an override and a key's
// rate limit apply there, and a revoked key stops working there.
TEST_F(ScaleOutTest, KeysAndLimitsChangedOnOneInstanceApplyOnTheOther) {
  auto a = Instance("a");
  auto b = Instance("b");
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(ca, "shared", "starter");
  ASSERT_EQ(cb.Get("/api/v2/usage/current", Bearer(t.key)).status, 200);
  auto r = ca.Send("PUT", "/admin/tenants/shared/limits", R"({"messages_sent": 5})", Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  r = ca.Send("PUT", "/admin/api-keys/" + t.key_id + "/rate-limits", R"({"general": 2000})",
              Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  r = cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 5), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("limit"), 5) << r.body;
  EXPECT_NE(r.header("ratelimit-policy").find("\"general\";q=2000;"), std::string::npos)
      << r.header("ratelimit-policy");
  EXPECT_EQ(cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status,
            429);
  r = ca.Send("DELETE", "/admin/api-keys/" + t.key_id, "", Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(cb.Get("/api/v2/usage/current", Bearer(t.key)).status, 401);
}

// Key reads from PostgreSQL run on the read pool, never on an I/O thread:
// with one I/O thread and PostgreSQL stalled (SIGSTOP), a request with a key
// the instance must look up waits, while /healthz and a consume with a key
// checked a moment ago are answered at once. A watchdog resumes PostgreSQL
// after 3 s, so that without the read pool the test fails instead of hanging.
TEST_F(ScaleOutTest, AKeyLookupOnAStalledPostgresHoldsNoIoThread) {
  auto server = InstanceWithConfig("a", "", "io_threads = 2", "io_threads = 1");
  HttpClient c(server->port());
  Tenant t = CreateTenant(c, "stall", "starter");
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status,
            200);  // the key is checked now
  postgres_->Pause();
  std::atomic<bool> resumed{false};
  std::thread watchdog([&] {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    postgres_->Resume();
    resumed = true;
  });
  std::atomic<int> unknown_status{0};
  std::thread unknown([&] {
    HttpClient other(server->port());
    unknown_status = other
                         .Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1),
                               Bearer("qk_not_a_key_of_this_deployment"))
                         .status;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the lookup has begun
  const absl::Time asked = absl::Now();
  const int health = c.Get("/healthz").status;
  const int consumed =
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status;
  const absl::Duration took = absl::Now() - asked;
  const bool answered_while_stalled = !resumed.load();
  watchdog.join();
  unknown.join();
  EXPECT_EQ(health, 200);
  EXPECT_EQ(consumed, 200);
  EXPECT_TRUE(answered_while_stalled) << "answered only after PostgreSQL resumed: " << took;
  EXPECT_LT(took, absl::Milliseconds(1500));
  EXPECT_EQ(unknown_status.load(), 401);  // looked up once PostgreSQL was back
}

// A send naming a session this instance does not see working makes it read
// the tenant's sessions from Redis again. That read waits on Redis, so it
// runs on the engine's blocking pool: with one I/O thread and Redis stalled
// (SIGSTOP, a 2 s command timeout), /healthz is answered at once meanwhile.
TEST_F(ScaleOutTest, ASessionReadOnAStalledRedisHoldsNoIoThread) {
  auto server = InstanceWithConfig("a", "\n[storage]\nredis_timeout_ms = 2000\n", "io_threads = 2",
                                   "io_threads = 1");
  HttpClient c(server->port());
  Tenant t = CreateTenant(c, "stalled", "pro");
  SetKeyLimits(c, t, 1000000);
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status,
            200);  // the tenant's baseline is in Redis, its key checked
  redis_.Pause();
  std::thread watchdog([&] {  // so that a send that never returns fails the test, not hangs it
    std::this_thread::sleep_for(std::chrono::seconds(4));
    redis_.Resume();
  });
  std::atomic<int> send_status{0};
  std::thread send([&] {
    HttpClient other(server->port());
    send_status =
        other.Post("/api/v2/messages/send", R"({"session":"nope","to":"+15550009"})", Bearer(t.key))
            .status;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the read has begun
  const absl::Time asked = absl::Now();
  const int health = c.Get("/healthz").status;
  const absl::Duration took = absl::Now() - asked;
  send.join();
  watchdog.join();
  EXPECT_EQ(health, 200);
  EXPECT_LT(took, absl::Milliseconds(1000)) << "the I/O thread waited on Redis";
  EXPECT_EQ(send_status.load(), 503);  // Redis did not answer within the timeout
}

// A key in steady use on one instance is re-read in the background before
// its 1 s check lapses, so a revocation made on another instance reaches
// it about a second later without any request reading PostgreSQL itself.
TEST_F(ScaleOutTest, AKeyInSteadyUseSeesARevocationOnAnotherInstance) {
  auto a = Instance("a");
  auto b = Instance("b");
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(ca, "steady", "starter");
  SetKeyLimits(ca, t, 1000000);
  const absl::Time until = absl::Now() + absl::Milliseconds(1600);
  while (absl::Now() < until) {  // past two refreshes
    ASSERT_EQ(
        cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status,
        200);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto r = ca.Send("DELETE", "/admin/api-keys/" + t.key_id, "", Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  const absl::Time revoked = absl::Now();
  int status = 200;
  while (status == 200 && absl::Now() - revoked < absl::Seconds(3)) {
    status =
        cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(status, 401);
  // About a second (a refresh every 0.75-0.95 s); the margin is for a
  // sanitizer build on a busy machine.
  EXPECT_LT(absl::Now() - revoked, absl::Milliseconds(2500));
}

// The admin's routes find what another instance made: its tenants are
// listed, a tenant id it took is refused (409, not a failed commit), and
// the tenant's limits and its key's rate limits are read, changed and the
// key revoked through this instance, which had never seen either.
TEST_F(ScaleOutTest, AdminRoutesFindTenantsAndKeysMadeOnAnotherInstance) {
  auto a = Instance("a");
  auto b = Instance("b");
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(ca, "madeona", "starter");
  ASSERT_EQ(ca.Get("/api/v2/usage/current", Bearer(t.key)).status, 200);  // a checks the key
  auto r = cb.Get("/admin/tenants", Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json().at("tenants").as_array().size(), 1u) << r.body;
  EXPECT_EQ(r.json().at("tenants").as_array()[0].at("id"), "madeona");
  r = cb.Post("/admin/tenants", R"({"id":"madeona","plan":"pro"})", Admin());
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.json().at("code"), "tenant_exists") << r.body;
  r = cb.Send("PUT", "/admin/tenants/madeona/limits", R"({"messages_sent": 7})", Admin());
  EXPECT_EQ(r.status, 200) << r.body;
  r = cb.Get("/admin/api-keys/" + t.key_id + "/rate-limits", Admin());
  EXPECT_EQ(r.status, 200) << r.body;
  r = cb.Send("PUT", "/admin/api-keys/" + t.key_id + "/rate-limits", R"({"general": 2000})",
              Admin());
  EXPECT_EQ(r.status, 200) << r.body;
  r = cb.Send("DELETE", "/admin/api-keys/" + t.key_id, "", Admin());
  EXPECT_EQ(r.status, 200) << r.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past a's key check
  EXPECT_EQ(ca.Get("/api/v2/usage/current", Bearer(t.key)).status, 401);
  EXPECT_EQ(cb.Send("DELETE", "/admin/api-keys/qk_none", "", Admin()).status, 404);
}

// The admin's read of one tenant asks PostgreSQL, so it shows at once a plan
// and limits changed through another instance, on a tenant this one holds.
TEST_F(ScaleOutTest, AnAdminTenantReadShowsAChangeMadeOnAnotherInstanceAtOnce) {
  auto a = Instance("a");
  auto b = Instance("b");
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(ca, "watched", "starter");
  auto r = ca.Get("/admin/tenants/watched", Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("tenant").at("plan"), "starter") << r.body;
  ASSERT_EQ(
      cb.Send("PUT", "/admin/tenants/watched/limits", R"({"messages_sent": 7})", Admin()).status,
      200);
  r = cb.Post("/api/v2/subscription/change", R"({"plan":"pro"})", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  r = ca.Get("/admin/tenants/watched", Admin());  // no wait for a key check
  ASSERT_EQ(r.status, 200) << r.body;
  const boost::json::value body = r.json();
  const boost::json::value& seen = body.at("tenant");
  EXPECT_EQ(seen.at("plan"), "pro") << r.body;
  ASSERT_TRUE(seen.at("limit_overrides").as_object().contains("messages_sent")) << r.body;
  EXPECT_EQ(seen.at("limit_overrides").at("messages_sent"), 7) << r.body;
  EXPECT_EQ(ca.Get("/admin/tenants/nobody", Admin()).status, 404);
}

// The admin's tenant list on an instance that already holds the tenant shows
// a plan and limits changed through another instance at once, as the single
// tenant's read does, and lists a tenant made there.
TEST_F(ScaleOutTest, TheAdminTenantListShowsChangesMadeOnAnotherInstanceAtOnce) {
  auto a = Instance("a");
  auto b = Instance("b");
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(ca, "listed", "starter");
  ASSERT_EQ(ca.Get("/api/v2/usage/current", Bearer(t.key)).status, 200);  // `a` holds it
  auto find = [&](const boost::json::value& body, const std::string& id) -> boost::json::value {
    for (const boost::json::value& v : body.at("tenants").as_array()) {
      if (v.at("id") == id.c_str()) return v;
    }
    return nullptr;
  };
  auto r = ca.Get("/admin/tenants", Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(find(r.json(), "listed").at("plan"), "starter") << r.body;
  ASSERT_EQ(
      cb.Send("PUT", "/admin/tenants/listed/limits", R"({"messages_sent": 7})", Admin()).status,
      200);
  r = cb.Post("/api/v2/subscription/change", R"({"plan":"pro"})", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  CreateTenant(cb, "made-on-b", "starter");
  r = ca.Get("/admin/tenants", Admin());  // no wait for a key check
  ASSERT_EQ(r.status, 200) << r.body;
  const boost::json::value seen = find(r.json(), "listed");
  ASSERT_TRUE(seen.is_object()) << r.body;
  EXPECT_EQ(seen.at("plan"), "pro") << r.body;
  ASSERT_TRUE(seen.at("limit_overrides").as_object().contains("messages_sent")) << r.body;
  EXPECT_EQ(seen.at("limit_overrides").at("messages_sent"), 7) << r.body;
  EXPECT_TRUE(find(r.json(), "made-on-b").is_object()) << r.body;
}

// Reads of every tenant from PostgreSQL (the admin's list, here in a loop)
// run while the tenant's limits and plan change through this instance: a
// read that started before a change was committed must not put the old
// values back, so each change shows in the next answer.
TEST_F(ScaleOutTest, ChangesMadeHereSurviveReadsOfTheStoreThatStartedBeforeThem) {
  auto a = Instance("a");
  HttpClient ca(a->port());
  Tenant t = CreateTenant(ca, "busy", "business");
  std::atomic<bool> stop{false};
  std::thread lister([&] {
    HttpClient cl(a->port());
    while (!stop.load()) cl.Get("/admin/tenants", Admin());
  });
  int stale = 0;
  for (int i = 0; i < 40; ++i) {
    const int limit = 1000 + i;
    ASSERT_EQ(ca.Send("PUT", "/admin/tenants/busy/limits",
                      absl::StrCat(R"({"messages_sent": )", limit, "}"), Admin())
                  .status,
              200);
    auto usage = ca.Get("/api/v2/usage/current", Bearer(t.key)).json();
    if (usage.at("meters").at("messages_sent").at("limit") != limit) ++stale;
    auto down = ca.Post("/api/v2/subscription/change", R"({"plan":"pro"})", Bearer(t.key));
    ASSERT_EQ(down.status, 200) << down.body;
    usage = ca.Get("/api/v2/usage/current", Bearer(t.key)).json();
    if (!usage.at("pending_plan").is_object()) ++stale;
    ASSERT_EQ(ca.Send("DELETE", "/api/v2/subscription/pending", "", Bearer(t.key)).status, 200);
    usage = ca.Get("/api/v2/usage/current", Bearer(t.key)).json();
    if (!usage.at("pending_plan").is_null()) ++stale;
  }
  stop = true;
  lister.join();
  EXPECT_EQ(stale, 0) << "answers that showed a change undone by an older read";
}

// Two instances asked to make the same tenant at the same moment: both may
// find the id free in PostgreSQL, and the second commit is refused by its
// unique key. That one answers 409 tenant_exists (not 503), and the key the
// other one answered with works on both instances.
TEST_F(ScaleOutTest, TwoInstancesMakingOneTenantAtOnceAnswer201And409) {
  auto a = Instance("a");
  auto b = Instance("b");
  constexpr int kRounds = 20;
  std::map<int, int> statuses;  // status -> count
  for (int i = 0; i < kRounds; ++i) {
    const std::string body = absl::StrCat(R"({"id":"twin)", i, R"(","plan":"starter"})");
    HttpClient ca(a->port()), cb(b->port());
    std::atomic<int> ready{0};
    testing::HttpResponse ra, rb;
    auto post = [&](HttpClient& c, testing::HttpResponse& out) {
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      out = c.Post("/admin/tenants", body, Admin());
    };
    std::thread ta([&] { post(ca, ra); });
    std::thread tb([&] { post(cb, rb); });
    ta.join();
    tb.join();
    ++statuses[ra.status];
    ++statuses[rb.status];
    const testing::HttpResponse& made = ra.status == 201 ? ra : rb;
    const testing::HttpResponse& refused = ra.status == 201 ? rb : ra;
    ASSERT_EQ(made.status, 201) << made.body;
    ASSERT_EQ(refused.status, 409) << refused.body;
    EXPECT_EQ(refused.json().at("code"), "tenant_exists") << refused.body;
    const std::string key(made.json().at("api_key").as_string());
    EXPECT_EQ(ca.Get("/api/v2/usage/current", Bearer(key)).status, 200) << i;
    EXPECT_EQ(cb.Get("/api/v2/usage/current", Bearer(key)).status, 200) << i;
  }
  EXPECT_EQ(statuses[201], kRounds);
  EXPECT_EQ(statuses[409], kRounds);
}

// A plan change, a pending downgrade and an add-on made through one instance
// apply on the other within a second (its next key check reads them).
TEST_F(ScaleOutTest, PlanChangesAndAddonsMadeOnOneInstanceApplyOnTheOther) {
  auto a = Instance("a");
  auto b = Instance("b");
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(ca, "subscriber", "pro");  // messages_sent 10,000
  SetKeyLimits(ca, t, 1000000);
  ASSERT_EQ(
      cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 10000), Bearer(t.key)).status,
      200);
  EXPECT_EQ(cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status,
            429);
  auto r = ca.Post("/api/v2/subscription/change", R"({"plan":"business"})", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  r = ca.Post("/api/v2/addons", R"({"meter":"chatbot_sessions","quantity":2000})", Bearer(t.key));
  ASSERT_EQ(r.status, 201) << r.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  r = cb.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("limit"), 50000) << r.body;
  auto usage = cb.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(usage.at("plan"), "business");
  EXPECT_EQ(usage.at("meters").at("chatbot_sessions").at("limit"), 7000);  // 5,000 + 2,000
  EXPECT_EQ(usage.at("addons").as_array().size(), 1u);
  r = ca.Post("/api/v2/subscription/change", R"({"plan":"pro"})", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  usage = cb.Get("/api/v2/usage/current", Bearer(t.key)).json();
  ASSERT_TRUE(usage.at("pending_plan").is_object()) << usage;
  EXPECT_EQ(usage.at("pending_plan").at("plan"), "pro");
  EXPECT_EQ(cb.Get("/api/v2/subscription", Bearer(t.key)).json().at("changes").as_array().size(),
            3u);
}

// Two instances share one queue: messages scheduled and bulk-queued
// through either are released by one of them at a time (the
// "message-queue" lease), each charged once and handed to the upstream once.
TEST_F(ScaleOutTest, TwoInstancesReleaseOneQueueWithoutDuplicates) {
  testing::Receiver upstream([](const testing::Receiver::Request& r) {
    testing::Receiver::Response response(boost::beast::http::status::ok, r.version());
    response.body() = "{}";
    return response;
  });
  const std::string delivery =
      "\n[delivery]\nprovider = \"http\"\nurl = \"" + upstream.Url("/send") + "\"\n";
  auto a = InstanceWithConfig("a", delivery);
  auto b = InstanceWithConfig("b", delivery);
  HttpClient ca(a->port()), cb(b->port());
  Tenant t = CreateTenant(ca, "queue2", "business");
  SetKeyLimits(ca, t, 1000000);
  StartSession(ca, t, "s1");
  std::set<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    HttpClient& c = i % 2 ? cb : ca;
    // Due soon after each is scheduled, however slow a sanitized build is
    // (RFC 3339 here is to the second: 2 s keeps it in the future).
    const std::string at = FormatRfc3339(absl::Now() + absl::Seconds(2));
    auto r = c.Post("/api/v2/messages/schedule",
                    absl::StrCat(R"({"session":"s1","to":"+1555000)", 1000 + i,
                                 R"(","text":"x","send_at":")", at, R"("})"),
                    Bearer(t.key));
    ASSERT_EQ(r.status, 202) << r.body;
    ids.insert(std::string(r.json().at("id").as_string()));
  }
  std::map<std::string, int> seen;
  for (int i = 0; i < 200; ++i) {
    seen.clear();
    for (const auto& r : upstream.requests()) ++seen[std::string(r["Idempotency-Key"])];
    if (seen.size() >= ids.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // anything more would show
  seen.clear();
  for (const auto& r : upstream.requests()) ++seen[std::string(r["Idempotency-Key"])];
  EXPECT_EQ(seen.size(), ids.size());
  for (const std::string& id : ids) {
    EXPECT_EQ(seen[id], 1) << id;
    auto r = cb.Get("/api/v2/messages/" + id, Bearer(t.key));
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status == 200) EXPECT_EQ(r.json().at("status"), "sent") << r.body;
  }
  EXPECT_EQ(UsageField(cb, t, "messages_sent"), ids.size());
}

}  // namespace
}  // namespace quotum::itest
