// RedisConnection (src/quotum/store/redis/) and the RedisServer test helper,
// on real redis-server processes.

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "redis_fixture.h"

namespace quotum::contract {
namespace {

using store::redis::ErrorReplyStatus;
using store::redis::ParseRedisUrl;
using store::redis::RedisConnection;
using store::redis::RedisEndpoint;

TEST(ParseRedisUrl, AcceptsHostPortAndDb) {
  auto full = ParseRedisUrl("redis://127.0.0.1:6380/2");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->host, "127.0.0.1");
  EXPECT_EQ(full->port, 6380);
  EXPECT_EQ(full->db, 2);
  auto bare = ParseRedisUrl("redis://cache.internal");
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(bare->host, "cache.internal");
  EXPECT_EQ(bare->port, 6379);
  EXPECT_EQ(bare->db, 0);
  auto v6 = ParseRedisUrl("redis://[::1]:7000/");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7000);
}

TEST(ParseRedisUrl, RejectsWhatItCannotHonour) {
  for (const char* bad : {"http://h:6379", "rediss://h:6379", "redis://user:pw@h", "redis://h:0",
                          "redis://h:99999", "redis://h/abc", "redis://h/1/2",
                          "redis://h/1?timeout=3", "redis://", "redis:h", "not a url"}) {
    auto parsed = ParseRedisUrl(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), bad)) << parsed.status();
  }
}

TEST(RedisServerHelper, MissingBinaryFailsWithTheInstallHint) {
  testing::RedisServer::Options options;
  options.binary = "/nonexistent/redis-server";
  testing::RedisServer server(options);
  EXPECT_FALSE(server.Start());
  EXPECT_TRUE(absl::StrContains(server.error(), "scripts/install-deps.sh")) << server.error();
}

TEST(RedisConnectionDown, ConnectToAClosedPortIsUnavailable) {
  testing::RedisServer server;
  ASSERT_TRUE(server.Start()) << server.error();
  const int port = server.port();
  server.Stop();
  auto conn = RedisConnection::Connect("127.0.0.1", port, absl::Seconds(2), absl::Seconds(2));
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(conn.status().message(), "refused")) << conn.status();
}

using RedisConnectionTest = RedisSuite;

TEST_F(RedisConnectionTest, ArgumentsAreBinarySafe) {
  const std::string value("a\0b\r\nc d", 8);
  auto set = conn().Command({"SET", "bin key", value});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->type(), REDIS_REPLY_STATUS);
  EXPECT_EQ((*set)->str(), "OK");
  auto get = conn().Command({"GET", "bin key"});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ((*get)->str(), value);
  auto missing = conn().Command({"GET", "no such key"});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_TRUE((*missing)->is_nil());
}

TEST_F(RedisConnectionTest, ServerErrorsAreRepliesNotStatuses) {
  ASSERT_TRUE(conn().Command({"SET", "text", "abc"}).ok());
  auto incr = conn().Command({"INCR", "text"});
  ASSERT_TRUE(incr.ok()) << incr.status();
  EXPECT_TRUE((*incr)->is_error());
  const absl::Status status = ErrorReplyStatus(**incr);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(status.message(), "not an integer")) << status;
  EXPECT_FALSE(conn().broken());
}

TEST_F(RedisConnectionTest, EvalShaReloadsAFlushedScript) {
  const std::string body = "return {KEYS[1], ARGV[1], ARGV[2]}";
  auto sha = conn().LoadScript(body);
  ASSERT_TRUE(sha.ok()) << sha.status();
  EXPECT_EQ(sha->size(), 40u);
  ASSERT_TRUE(conn().Command({"SCRIPT", "FLUSH"}).ok());
  const std::vector<std::string_view> keys = {"k"}, args = {"a", "b"};
  auto reply = conn().EvalSha(*sha, body, keys, args);
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_EQ((*reply)->size(), 3u);
  EXPECT_EQ((**reply)[0].str(), "k");
  EXPECT_EQ((**reply)[2].str(), "b");

  ASSERT_TRUE(conn().Command({"SCRIPT", "FLUSH"}).ok());
  auto mismatch = conn().EvalSha(*sha, "return 1", keys, args);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kInternal);
}

TEST_F(RedisConnectionTest, UrlDbIsSelected) {
  auto endpoint = ParseRedisUrl("redis://127.0.0.1:" + std::to_string(server_->port()) + "/3");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  auto db3 = RedisConnection::Connect(*endpoint, absl::Seconds(2), absl::Seconds(2));
  ASSERT_TRUE(db3.ok()) << db3.status();
  ASSERT_TRUE(db3->Command({"SET", "only-in-3", "x"}).ok());
  auto in0 = conn().Command({"EXISTS", "only-in-3"});
  ASSERT_TRUE(in0.ok()) << in0.status();
  EXPECT_EQ((*in0)->integer(), 0);
  auto in3 = db3->Command({"EXISTS", "only-in-3"});
  ASSERT_TRUE(in3.ok()) << in3.status();
  EXPECT_EQ((*in3)->integer(), 1);
}

TEST_F(RedisConnectionTest, ACommandTimeoutIsUnavailableAndBreaksTheConnection) {
  auto slow = RedisConnection::Connect("127.0.0.1", server_->port(), absl::Seconds(2),
                                       absl::Milliseconds(100));
  ASSERT_TRUE(slow.ok()) << slow.status();
  auto blocked = slow->Command({"BLPOP", "never-pushed", "2"});
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(slow->broken());
  auto again = slow->Command({"PING"});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(slow->Reconnect().ok());
  auto ping = slow->Command({"PING"});
  ASSERT_TRUE(ping.ok()) << ping.status();
  EXPECT_EQ((*ping)->str(), "PONG");
}

// Redis goes down (SIGTERM, then SIGKILL) and comes back on the same port and
// dir; the connection reports kUnavailable meanwhile and Reconnect() resumes.
TEST(RedisConnectionDown, ServerGoesDownAndComesBack) {
  testing::RedisServer server;
  ASSERT_TRUE(server.Start()) << server.error();
  auto endpoint = ParseRedisUrl("redis://127.0.0.1:" + std::to_string(server.port()) + "/1");
  ASSERT_TRUE(endpoint.ok());
  auto conn = RedisConnection::Connect(*endpoint, absl::Seconds(2), absl::Seconds(2));
  ASSERT_TRUE(conn.ok()) << conn.status();
  ASSERT_TRUE(conn->Command({"SET", "survives", "yes"}).ok());

  EXPECT_EQ(server.Stop(), 0);  // a clean shutdown writes the AOF
  auto down = conn->Command({"GET", "survives"});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(conn->Reconnect().ok());

  ASSERT_TRUE(server.Start()) << server.error();
  ASSERT_TRUE(conn->Reconnect().ok());
  auto back = conn->Command({"GET", "survives"});  // db 1 again after Reconnect
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)->str(), "yes");

  server.Kill9();
  EXPECT_FALSE(conn->Command({"PING"}).ok());
  ASSERT_TRUE(server.Start()) << server.error();
  ASSERT_TRUE(conn->Reconnect().ok());
  EXPECT_TRUE(conn->Command({"PING"}).ok());
}

}  // namespace
}  // namespace quotum::contract
