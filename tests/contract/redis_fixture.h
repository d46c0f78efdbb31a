#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "quotum/store/redis/redis_connection.h"
#include "quotum/testing/redis_server.h"

namespace quotum::contract {

// The test-only Lua entries of tests/contract/lua/, embedded by
// tests/CMakeLists.txt; each is appended to LimiterLuaLibrary().
std::string_view LimiterStepLua();
std::string_view LimiterPureLua();
std::string_view ArithProbeLua();

/// A test suite sharing one real redis-server (started once per suite). A test
/// FAILS, never skips, when the server could not start (e.g. redis-server is
/// not installed: scripts/install-deps.sh).
class RedisSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<testing::RedisServer>();
    start_error_ = server_->Start() ? "" : server_->error();
  }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override {
    ASSERT_TRUE(start_error_.empty()) << start_error_;
    auto conn = store::redis::RedisConnection::Connect("127.0.0.1", server_->port(),
                                                       absl::Seconds(5), absl::Seconds(10));
    ASSERT_TRUE(conn.ok()) << conn.status();
    conn_.emplace(std::move(*conn));
  }

  store::redis::RedisConnection& conn() { return *conn_; }

  inline static std::unique_ptr<testing::RedisServer> server_;
  inline static std::string start_error_;
  std::optional<store::redis::RedisConnection> conn_;
};

}  // namespace quotum::contract
