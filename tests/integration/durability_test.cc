// Restart tests: what was acknowledged is there after SIGTERM or kill -9.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"

namespace quotum::itest {
namespace {

using testing::HttpClient;

TEST(Durability, SigtermDrainsExitsZeroAndKeepsEverything) {
  std::string dir = testing::MakeTempDir("quotum-term-");
  Tenant t;
  {
    auto server = StartServer(dir);
    HttpClient c(server->port());
    t = CreateTenant(c, "term", "pro");
    auto h = Bearer(t.key);
    h["Idempotency-Key"] = "before-restart";
    ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 123), h).status, 200);
    ASSERT_EQ(c.Post("/api/v2/chatbot/trigger", "{}", Bearer(t.key)).status, 200);
    EXPECT_EQ(server->Stop(), 0);
  }
  auto server = StartServer(dir);
  HttpClient c(server->port());
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 123u);
  auto h = Bearer(t.key);
  h["Idempotency-Key"] = "before-restart";
  auto replay = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 123), h);
  ASSERT_EQ(replay.status, 200);
  EXPECT_EQ(replay.json().at("replayed"), true);
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 123u);
  auto u = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(u.at("meters").at("chatbot_sessions").at("used"), 1);
  EXPECT_EQ(server->Stop(), 0);
}

TEST(Durability, KillNineUnderLoadLosesNothingAcknowledged) {
  std::string dir = testing::MakeTempDir("quotum-kill-");
  auto server = StartServer(dir);
  Tenant t;
  {
    HttpClient c(server->port());
    t = CreateTenant(c, "kill", "enterprise");  // no message limit: every consume is a 200
    SetKeyLimits(c, t, 100000000);
  }
  constexpr int kClients = 8;
  std::atomic<uint64_t> acked{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&] {
      HttpClient c(server->port());
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
        auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key));
        if (r.status == 200)
          acked++;
        else if (r.status == 0)
          break;  // connection gone: the server was killed
      }
    });
  }
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  while (acked.load() < 2000 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bool loaded = acked.load() >= 2000;
  const bool killed = server->Kill9();
  stop = true;
  for (auto& th : threads) th.join();
  ASSERT_TRUE(killed) << server->error();
  ASSERT_TRUE(loaded) << "the load never got going: " << acked.load() << " acknowledged";
  const uint64_t acknowledged = acked.load();

  auto again = StartServer(dir);
  HttpClient c(again->port());
  const uint64_t stored = UsageField(c, t, "messages_sent");
  // Every acknowledged unit is there; at most the requests in flight at the
  // kill (one per client) committed without their response arriving.
  EXPECT_GE(stored, acknowledged);
  EXPECT_LE(stored, acknowledged + kClients);
  EXPECT_EQ(again->Stop(), 0);
}

// A full disk: no file may grow (RLIMIT_FSIZE set on the running server from
// outside; writes fail with EFBIG as they would with ENOSPC). The journal's
// write and the store's commit both fail: the request is refused with 503,
// nothing of it stays in memory or on disk, and once there is room again the
// server goes on without a restart.
TEST(Durability, AFullDiskAnswers503AcknowledgesNothingAndRecovers) {
  std::string dir = testing::MakeTempDir("quotum-full-");
  auto server = StartServer(dir);
  HttpClient c(server->port());
  Tenant t = CreateTenant(c, "full", "pro");
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 5), Bearer(t.key)).status,
            200);
  rlimit old{};
  ASSERT_EQ(prlimit(server->pid(), RLIMIT_FSIZE, nullptr, &old), 0);
  rlimit full = old;
  full.rlim_cur = 1;
  ASSERT_EQ(prlimit(server->pid(), RLIMIT_FSIZE, &full, nullptr), 0);
  auto h = Bearer(t.key);
  h["Idempotency-Key"] = "during-full";
  auto refused = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 7), h);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.json().at("code"), "store_unavailable") << refused.body;
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 5u);  // taken back out of memory
  ASSERT_EQ(prlimit(server->pid(), RLIMIT_FSIZE, &old, nullptr), 0);
  // The same key again: the refused first left nothing to replay.
  auto retried = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 7), h);
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_FALSE(retried.json().as_object().contains("replayed")) << retried.body;
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 12u);
  ASSERT_TRUE(server->Kill9()) << server->error();
  auto again = StartServer(dir);
  HttpClient c2(again->port());
  EXPECT_EQ(UsageField(c2, t, "messages_sent"), 12u);
  EXPECT_EQ(again->Stop(), 0);
}

TEST(Durability, FsyncModeWorksToo) {
  std::string dir = testing::MakeTempDir("quotum-fsync-");
  std::string cfg = dir + "/fsync.toml";
  {
    std::ifstream in(QUOTUM_EXAMPLE_CONFIG);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    auto pos = text.find("durability = \"process\"");
    ASSERT_NE(pos, std::string::npos);
    text.replace(pos, 22, "durability = \"fsync\"");
    std::ofstream(cfg) << text;
  }
  testing::ServerProcess::Options o;
  o.binary = BinaryPath();
  o.config = cfg;
  o.data_dir = dir + "/data";
  o.admin_key = kAdminKey;
  testing::ServerProcess server(o);
  ASSERT_TRUE(server.Start()) << server.error();
  HttpClient c(server.port());
  Tenant t = CreateTenant(c, "fs", "pro");
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 9), Bearer(t.key)).status,
            200);
  ASSERT_TRUE(server.Kill9()) << server.error();
  ASSERT_TRUE(server.Start()) << server.error();
  HttpClient c2(server.port());
  EXPECT_EQ(UsageField(c2, t, "messages_sent"), 9u);
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace quotum::itest
