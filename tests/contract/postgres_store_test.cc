// What only the PostgreSQL store has: versioned migrations under an advisory
// lock, connection strings, a server that goes away and comes back; and the
// PostgresServer test helper. On real PostgreSQL servers the tests start.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <latch>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "postgres_fixture.h"
#include "quotum/core/billing_period.h"
#include "quotum/store/postgres/migrations.h"
#include "quotum/store/postgres/pg_connection.h"
#include "quotum/store/postgres/pg_store.h"
#include "quotum/testing/postgres_server.h"
#include "quotum/testing/server_process.h"
#include "support/time_literal.h"

namespace quotum::contract {
namespace {

using engine::CommitBatch;
using store::postgres::LatestSchemaVersion;
using store::postgres::Migrate;
using store::postgres::PgConnection;
using store::postgres::PgStore;

const absl::Time kPeriod = absl::FromUnixSeconds(1794132000);  // 2026-11-08T10:00:00Z

CommitBatch NewTenant(const std::string& id) {
  CommitBatch b;
  b.tenants = {{id, id, "pro", kPeriod, kPeriod}};
  return b;
}

CommitBatch Usage(const std::string& tenant, uint64_t quantity) {
  CommitBatch b;
  b.usage = {{tenant, "sent", "", kPeriod, T("2026-11-23T12:00:00Z"), quantity}};
  return b;
}

// The period counter of (tenant, "sent"), or the read's error.
absl::StatusOr<uint64_t> Sent(engine::Store& store, const std::string& tenant) {
  auto rows = store.Periods(tenant, kPeriod);
  if (!rows.ok()) return rows.status();
  return rows->empty() ? 0 : rows->front().value;
}

// The rows of schema_migrations, as "version:description;...".
std::string MigrationRows(const std::string& url) {
  auto conn = PgConnection::Connect(url, absl::Seconds(5));
  if (!conn.ok()) return conn.status().ToString();
  auto r = (*conn)->Exec("SELECT version, description FROM schema_migrations ORDER BY 1");
  if (!r.ok()) return r.status().ToString();
  std::string out;
  for (int i = 0; i < r->rows(); ++i) {
    absl::StrAppend(&out, r->row(i).Text(0), ":", r->row(i).Text(1), ";");
  }
  return out;
}

// The same as MigrationRows should read after a migration to the latest version.
std::string ExpectedMigrationRows() {
  std::string out;
  for (const auto& m : store::postgres::Migrations()) {
    absl::StrAppend(&out, m.version, ":", m.description, ";");
  }
  return out;
}

/// One server for the suite; each test starts on an emptied "quotum" database.
class PostgresStoreTest : public PostgresSuite {
 protected:
  const std::string url_ = server_->url();
};

TEST_F(PostgresStoreTest, TwoInstancesOpeningAFreshDatabaseTogetherMigrateItOnce) {
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(round);
    ASSERT_TRUE(server_->ResetDatabase("quotum")) << server_->error();
    const std::string& url = url_;
    std::latch start(2);
    absl::Status first, second;
    // Round by round, one of the two runs the public Migrate() instead.
    std::thread a([&] {
      start.arrive_and_wait();
      first = PgStore::Open({url}).status();
    });
    std::thread b([&] {
      start.arrive_and_wait();
      second = round % 2 ? Migrate(url).status() : PgStore::Open({url}).status();
    });
    a.join();
    b.join();
    EXPECT_EQ(first, absl::OkStatus());
    EXPECT_EQ(second, absl::OkStatus());
    EXPECT_EQ(MigrationRows(url), ExpectedMigrationRows());
  }
}

// A lease call's answer; a failed call fails the test.
bool Held(const absl::StatusOr<bool>& held) {
  EXPECT_TRUE(held.ok()) << held.status();
  return held.ok() && *held;
}

// Two instances (two stores on one database) race for one lease: one holds
// it and renews it; the other takes it only once it has run out.
TEST_F(PostgresStoreTest, ALeaseHasOneHolderUntilItRunsOut) {
  auto a = PgStore::Open({url_});
  auto b = PgStore::Open({url_});
  ASSERT_TRUE(a.ok() && b.ok());
  const absl::Duration ttl = absl::Milliseconds(400);
  EXPECT_TRUE(Held((*a)->HoldLease("sweep", "a", ttl)));
  EXPECT_FALSE(Held((*b)->HoldLease("sweep", "b", ttl)));
  EXPECT_TRUE(Held((*b)->HoldLease("other", "b", ttl)));  // leases are by name
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_TRUE(Held((*a)->HoldLease("sweep", "a", ttl)));  // renewed
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_FALSE(Held((*b)->HoldLease("sweep", "b", ttl)));  // still a's
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(Held((*b)->HoldLease("sweep", "b", ttl)));  // a's ran out
  EXPECT_FALSE(Held((*a)->HoldLease("sweep", "a", ttl)));
}

TEST_F(PostgresStoreTest, MigrateReportsTheVersionsAndIsIdempotent) {
  const std::string& url = url_;
  auto first = Migrate(url);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->from_version, 0);
  EXPECT_EQ(first->to_version, LatestSchemaVersion());
  auto again = Migrate(url);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->from_version, LatestSchemaVersion());
  EXPECT_EQ(again->to_version, LatestSchemaVersion());
  EXPECT_EQ(MigrationRows(url), ExpectedMigrationRows());
}

TEST_F(PostgresStoreTest, ADatabaseOfANewerBuildIsRefusedWithAClearError) {
  const std::string& url = url_;
  ASSERT_TRUE(Migrate(url).ok());
  const int newer = LatestSchemaVersion() + 1;
  {
    auto conn = PgConnection::Connect(url, absl::Seconds(5));
    ASSERT_TRUE(conn.ok()) << conn.status();
    ASSERT_EQ((*conn)
                  ->Exec(absl::StrCat("INSERT INTO schema_migrations(version, description) "
                                      "VALUES(",
                                      newer, ", 'from the future')"))
                  .status(),
              absl::OkStatus());
  }
  for (const absl::Status& s : {PgStore::Open({url}).status(), Migrate(url).status()}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_TRUE(absl::StrContains(
        s.message(), absl::StrCat("schema is at version ", newer, ", newer than this build")))
        << s;
  }
}

TEST_F(PostgresStoreTest, KeyValueConninfoWorksLikeAUrl) {
  const std::string& url = url_;
  const std::string database = url.substr(url.rfind('/') + 1);
  auto store = PgStore::Open(
      {absl::StrCat("host=127.0.0.1 port=", server_->port(), " user=postgres dbname=", database)});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->CheckWritable(), absl::OkStatus());
}

TEST_F(PostgresStoreTest, AMalformedConninfoIsAnInvalidArgument) {
  auto store = PgStore::Open({"host=127.0.0.1 port"});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << store.status();
}

TEST_F(PostgresStoreTest, AnUnreachableServerIsUnavailableWithLibpqsMessage) {
  const int port = testing::PickFreePort();  // nothing listens there
  ASSERT_NE(port, 0);
  const std::string url = absl::StrCat("postgresql://postgres@127.0.0.1:", port, "/quotum");
  auto store = PgStore::Open({url});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_TRUE(absl::StrContains(store.status().message(), "refused")) << store.status();
}

TEST_F(PostgresStoreTest, ConnectionsTheServerDroppedAreReopenedOnTheNextCall) {
  const std::string& url = url_;
  auto store = PgStore::Open({url});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ((*store)->Commit(NewTenant("a")), absl::OkStatus());
  ASSERT_EQ(Sent(**store, "a").value_or(99), 0u);  // opens a reader connection
  // An administrator (or a failover) ends every session of the database.
  auto admin = PgConnection::Connect(url, absl::Seconds(5));
  ASSERT_TRUE(admin.ok()) << admin.status();
  const char* others =
      "FROM pg_stat_activity WHERE datname=current_database() AND pid<>pg_backend_pid()";
  ASSERT_TRUE((*admin)->Exec(absl::StrCat("SELECT pg_terminate_backend(pid) ", others)).ok());
  for (int i = 0; i < 500; ++i) {
    auto left = (*admin)->Exec(absl::StrCat("SELECT COUNT(*) ", others));
    ASSERT_TRUE(left.ok()) << left.status();
    if (left->row(0).Int(0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ((*store)->Commit(Usage("a", 2)), absl::OkStatus());
  EXPECT_EQ(Sent(**store, "a").value_or(99), 2u);
}

TEST_F(PostgresStoreTest, AStoppedServerIsUnavailableAndTheStoreRecoversWhenItIsBack) {
  testing::PostgresServer server;  // its own: this test stops it
  ASSERT_TRUE(server.Start()) << server.error();
  auto opened = PgStore::Open({server.url()});
  ASSERT_TRUE(opened.ok()) << opened.status();
  PgStore& store = **opened;
  ASSERT_EQ(store.Commit(NewTenant("a")), absl::OkStatus());
  ASSERT_EQ(store.Commit(Usage("a", 1)), absl::OkStatus());
  ASSERT_EQ(Sent(store, "a").value_or(0), 1u);

  ASSERT_EQ(server.Stop(), 0);
  EXPECT_EQ(store.Commit(Usage("a", 10)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Sent(store, "a").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.CheckWritable().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Events("a", 1).status().code(), absl::StatusCode::kUnavailable);

  ASSERT_TRUE(server.Start()) << server.error();
  EXPECT_EQ(store.CheckWritable(), absl::OkStatus());
  EXPECT_EQ(store.Commit(Usage("a", 100)), absl::OkStatus());
  EXPECT_EQ(Sent(store, "a").value_or(0), 101u) << "the failed commit left nothing";

  server.Kill9();  // no goodbye to the clients this time
  EXPECT_EQ(store.Commit(Usage("a", 1000)).code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(server.Start()) << server.error();
  EXPECT_EQ(store.Commit(Usage("a", 1000)), absl::OkStatus());
  EXPECT_EQ(Sent(store, "a").value_or(0), 1101u);
}

// PostgreSQL text has no NUL byte (SQLite stores one): the batch is refused
// whole, with a clear error, rather than stored truncated.
TEST_F(PostgresStoreTest, TextWithANulByteIsRefusedAndChangesNothing) {
  auto store = PgStore::Open({url_});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ((*store)->Commit(NewTenant("a")), absl::OkStatus());
  CommitBatch b = Usage("a", 5);
  b.messages = {{"m-1", "a", "whatsapp", "+1", std::string("a\0b", 3), "queued", kPeriod}};
  absl::Status s = (*store)->Commit(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "NUL")) << s;
  EXPECT_EQ(Sent(**store, "a").value_or(99), 0u);
  b.messages[0].text = "ab";
  EXPECT_EQ((*store)->Commit(b), absl::OkStatus());
  EXPECT_EQ(Sent(**store, "a").value_or(99), 5u);
}

// FindTenant: the tenant with its overrides and live add-ons, no key; an
// unknown id is nullopt.
TEST_F(PostgresStoreTest, FindTenantReadsATenantWithItsOverridesAndAddons) {
  auto store = PgStore::Open({url_});
  ASSERT_TRUE(store.ok()) << store.status();
  CommitBatch b = NewTenant("t-find");
  b.overrides = {{"t-find", "messages_sent", 777}};
  b.addons = {{"ad-1", "t-find", "chatbot_sessions", 1000, 3000, kPeriod, std::nullopt}};
  ASSERT_EQ((*store)->Commit(b), absl::OkStatus());
  auto found = (*store)->FindTenant("t-find");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->tenant.id, "t-find");
  EXPECT_EQ((*found)->tenant.plan, b.tenants[0].plan);
  EXPECT_TRUE((*found)->key.key_id.empty());
  ASSERT_EQ((*found)->overrides.size(), 1u);
  EXPECT_EQ((*found)->overrides[0].limit, 777u);
  ASSERT_EQ((*found)->addons.size(), 1u);
  EXPECT_EQ((*found)->addons[0].id, "ad-1");
  auto unknown = (*store)->FindTenant("nobody");
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_FALSE(unknown->has_value());
}

// AllTenants: every tenant in id order, each with what FindTenant gives it
// (its overrides and live add-ons, not another tenant's, not ended ones).
TEST_F(PostgresStoreTest, AllTenantsReadsEveryTenantAsFindTenantDoes) {
  auto store = PgStore::Open({url_});
  ASSERT_TRUE(store.ok()) << store.status();
  for (const char* id : {"t-zeta", "t-alpha", "t-mid"}) {
    ASSERT_EQ((*store)->Commit(NewTenant(id)), absl::OkStatus());
  }
  CommitBatch b;
  b.overrides = {{"t-zeta", "messages_sent", 777}, {"t-mid", "api_calls", 5}};
  b.addons = {{"ad-1", "t-alpha", "chatbot_sessions", 1000, 3000, kPeriod, std::nullopt},
              {"ad-0", "t-alpha", "chatbot_sessions", 9, 3000, kPeriod - absl::Hours(48),
               kPeriod - absl::Hours(24)}};  // ended
  ASSERT_EQ((*store)->Commit(b), absl::OkStatus());
  auto all = (*store)->AllTenants();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].tenant.id, "t-alpha");
  EXPECT_EQ((*all)[1].tenant.id, "t-mid");
  EXPECT_EQ((*all)[2].tenant.id, "t-zeta");
  for (const engine::KeySnapshot& snap : *all) {
    auto one = (*store)->FindTenant(snap.tenant.id);
    ASSERT_TRUE(one.ok() && one->has_value()) << snap.tenant.id;
    EXPECT_EQ(snap.tenant.plan, (*one)->tenant.plan);
    EXPECT_EQ(snap.tenant.name, (*one)->tenant.name);
    ASSERT_EQ(snap.overrides.size(), (*one)->overrides.size()) << snap.tenant.id;
    for (size_t i = 0; i < snap.overrides.size(); ++i) {
      EXPECT_EQ(snap.overrides[i].meter, (*one)->overrides[i].meter);
      EXPECT_EQ(snap.overrides[i].limit, (*one)->overrides[i].limit);
    }
    ASSERT_EQ(snap.addons.size(), (*one)->addons.size()) << snap.tenant.id;
    for (size_t i = 0; i < snap.addons.size(); ++i) {
      EXPECT_EQ(snap.addons[i].id, (*one)->addons[i].id);
    }
    EXPECT_EQ(snap.pending_plan.has_value(), (*one)->pending_plan.has_value());
  }
  ASSERT_EQ((*all)[0].addons.size(), 1u);
  EXPECT_EQ((*all)[0].addons[0].id, "ad-1");
  ASSERT_EQ((*all)[1].overrides.size(), 1u);
  EXPECT_EQ((*all)[1].overrides[0].limit, 5u);
  ASSERT_EQ((*all)[2].overrides.size(), 1u);
  EXPECT_EQ((*all)[2].overrides[0].limit, 777u);
}

TEST(PostgresSqlState, MapsToStatusCodes) {
  using absl::StatusCode;
  using store::postgres::CodeForSqlState;
  EXPECT_EQ(CodeForSqlState("08006"), StatusCode::kUnavailable);
  EXPECT_EQ(CodeForSqlState("57P01"), StatusCode::kUnavailable);
  EXPECT_EQ(CodeForSqlState("53300"), StatusCode::kUnavailable);
  EXPECT_EQ(CodeForSqlState("25006"), StatusCode::kUnavailable);
  EXPECT_EQ(CodeForSqlState("40001"), StatusCode::kAborted);
  EXPECT_EQ(CodeForSqlState("23503"), StatusCode::kFailedPrecondition);
  EXPECT_EQ(CodeForSqlState("57014"), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(CodeForSqlState("42P01"), StatusCode::kInternal);
}

TEST(PostgresServerHelper, MissingBinariesFailWithTheInstallHint) {
  testing::PostgresServer::Options options;
  options.bin_dir = "/nonexistent/postgresql/bin";
  testing::PostgresServer server(options);
  EXPECT_FALSE(server.Start());
  EXPECT_TRUE(absl::StrContains(server.error(), "scripts/install-deps.sh")) << server.error();
}

TEST(PostgresServerHelper, DatabasesAreFreshAndTheServerRestartsOnItsPortAndDir) {
  testing::PostgresServer server;
  ASSERT_TRUE(server.Start()) << server.error();
  const int port = server.port();
  const std::string first = server.CreateDatabase(), second = server.CreateDatabase();
  ASSERT_FALSE(first.empty() || second.empty()) << server.error();
  EXPECT_NE(first, second);
  ASSERT_TRUE(Migrate(first).ok());
  server.Kill9();
  ASSERT_TRUE(server.Start()) << server.error();
  EXPECT_EQ(server.port(), port);
  auto conn = PgConnection::Connect(second, absl::Seconds(5));
  ASSERT_TRUE(conn.ok()) << conn.status();
  auto tables = (*conn)->Exec("SELECT COUNT(*) FROM pg_tables WHERE schemaname='public'");
  ASSERT_TRUE(tables.ok()) << tables.status();
  EXPECT_EQ(tables->row(0).Int(0), 0) << "a new database is empty";
  EXPECT_EQ(MigrationRows(first), ExpectedMigrationRows()) << "kept across kill -9";
}

}  // namespace
}  // namespace quotum::contract
