// Scale-out mode (`quotum serve --redis-url`) against a real redis-server
// started here: instances decide together in Redis, and Redis going away and
// coming back is handled without a restart.
#include <atomic>
#include <filesystem>
#include <thread>

#include "gtest/gtest.h"
#include "harness.h"
#include "quotum/testing/http_client.h"
#include "quotum/testing/redis_server.h"
#include "quotum/testing/server_process.h"

namespace quotum::itest {
namespace {

using testing::HttpClient;

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start()) << redis_.error();
    redis_url_ = "redis://127.0.0.1:" + std::to_string(redis_.port());
    dir_ = testing::MakeTempDir("quotum-scale-out");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<testing::ServerProcess> Instance(const std::string& data_dir) {
    return StartServer(data_dir, {"--redis-url", redis_url_});
  }

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

// Two instances on the same Redis, 64 clients split across them, a limit of
// 1,000: exactly 1,000 admitted, and both instances report 1,000 used. (The
// tenant is made on one instance and its database copied for the other: the
// shared cold store that will carry tenants and keys is not built yet.)
TEST_F(ScaleOutTest, TwoInstancesAdmitExactlyTheLimitTogether) {
  Tenant t;
  {
    auto first = Instance(dir_ + "/a");
    HttpClient c(first->port());
    t = RaceTenant(c);
    ASSERT_EQ(first->Stop(), 0);
  }
  std::filesystem::copy(dir_ + "/a", dir_ + "/b", std::filesystem::copy_options::recursive);
  auto a = Instance(dir_ + "/a");
  auto b = Instance(dir_ + "/b");
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
}

// Redis stops mid-run: decisions fail closed (503 store_unavailable),
// usage/current answers from the aggregates marked "aggregate", /readyz says
// which dependency is down. Redis comes back: everything recovers without a
// restart, and nothing acknowledged was lost.
TEST_F(ScaleOutTest, RedisDownFailsClosedReadsFallBackAndRecoveryIsAutomatic) {
  auto server = Instance(dir_ + "/a");
  HttpClient c(server->port());
  Tenant t = CreateTenant(c, "down", "starter");
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(
        c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 2), Bearer(t.key)).status,
        200);
  }
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
      dir_ + "/a", {"--redis-url", "redis://127.0.0.1:" + std::to_string(volatile_redis.port())});
  HttpClient c(server->port());
  Tenant t = CreateTenant(c, "lost", "starter");  // messages_sent limit 1000
  SetKeyLimits(c, t, 1000000);
  auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 998), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  // The written-behind rows reach the cold store within a group commit.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(volatile_redis.Stop(), 0);
  ASSERT_TRUE(volatile_redis.Start()) << volatile_redis.error();
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 998u);
  r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 5), Bearer(t.key));
  EXPECT_EQ(r.status, 429) << r.body;
  r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 2), Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 1000u);
}

TEST_F(ScaleOutTest, IdempotentRetriesOnAnotherInstanceCountOnce) {
  Tenant t;
  {
    auto first = Instance(dir_ + "/a");
    HttpClient c(first->port());
    t = CreateTenant(c, "idem", "pro");
    ASSERT_EQ(first->Stop(), 0);
  }
  std::filesystem::copy(dir_ + "/a", dir_ + "/b", std::filesystem::copy_options::recursive);
  auto a = Instance(dir_ + "/a");
  auto b = Instance(dir_ + "/b");
  HttpClient ca(a->port()), cb(b->port());
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

}  // namespace
}  // namespace quotum::itest
