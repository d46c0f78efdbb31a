#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "quotum/store/redis/redis_connection.h"
#include "quotum/store/redis/redis_ledger.h"
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

/// A RedisSuite whose tests start on an empty Redis and make RedisLedgers.
class RedisLedgerSuite : public RedisSuite {
 protected:
  void SetUp() override {
    RedisSuite::SetUp();
    auto flushed = conn().Command({"FLUSHALL"});
    ASSERT_TRUE(flushed.ok()) << flushed.status();
  }

  store::redis::RedisClientOptions Client() const {
    store::redis::RedisClientOptions o;
    o.endpoint.host = "127.0.0.1";
    o.endpoint.port = server_->port();
    return o;
  }

  std::unique_ptr<store::redis::RedisLedger> Ledger(bool redis_time = true) {
    store::redis::RedisLedgerOptions o;
    o.client = Client();
    o.redis_time = redis_time;
    auto ledger = store::redis::RedisLedger::Connect(o);
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    return ledger.ok() ? std::move(*ledger) : nullptr;
  }
};

/// Execute, giving an empty baseline first when the ledger asks (a fresh
/// Redis: the cold store of these tests holds nothing).
inline absl::StatusOr<engine::LedgerResult> Decide(store::redis::RedisLedger& ledger,
                                                   const engine::CheckProgram& p, absl::Time now) {
  auto r = ledger.Execute(p, now);
  if (!r.ok() || !r->needs_baseline) return r;
  if (absl::Status s = ledger.SetBaseline(p.tenant_id, p.quota.period, {}); !s.ok()) return s;
  return ledger.Execute(p, now);
}

/// A plain program: `quantity` units of messages_sent against `limit`.
inline engine::CheckProgram Charge(absl::string_view tenant, uint64_t quantity, uint64_t limit,
                                   absl::Time now) {
  engine::CheckProgram p;
  p.tenant_id = tenant;
  p.quota.meter = 1;
  p.quota.meter_name = "messages_sent";
  p.quota.quantity = quantity;
  p.quota.limit = limit;
  p.quota.period = {now - absl::Hours(1), now + absl::Hours(24 * 29)};
  return p;
}

}  // namespace quotum::contract
