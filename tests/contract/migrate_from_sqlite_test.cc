// `quotum migrate --from-sqlite DIR`: an embedded deployment's SQLite store,
// filled through the engine::Store port, copied into a real PostgreSQL; the
// PostgreSQL store then answers through the port exactly as the SQLite store
// does. Refusals (a target that holds data, no Quotum database, a locked
// file) write nothing; a failure mid-copy leaves nothing behind.

#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "postgres_fixture.h"
#include "quotum/core/billing_period.h"
#include "quotum/store/migrate/sqlite_to_postgres.h"
#include "quotum/store/postgres/pg_connection.h"
#include "quotum/store/postgres/pg_store.h"
#include "quotum/store/sqlite/db.h"
#include "quotum/store/sqlite/sqlite_store.h"
#include "quotum/testing/postgres_server.h"
#include "quotum/testing/server_process.h"
#include "store_records.h"
#include "support/time_literal.h"

namespace quotum::contract {
namespace {

using engine::CommitBatch;
using engine::Decision;
using engine::Store;
using store::migrate::CopySqliteToPostgres;
using store::migrate::FormatCounts;
using store::migrate::SqliteToPostgresOptions;
using store::postgres::PgConnection;
using store::postgres::PgStore;
using store::sqlite::SqliteStore;

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
const absl::Time kOctober = T("2026-10-08T10:00:00Z");   // a period start
const absl::Time kNovember = T("2026-11-08T10:00:00Z");  // the next one

// Tenants (created out of id order), keys, overrides (one set then cleared).
CommitBatch TenantsAndKeys() {
  CommitBatch b;
  b.tenants = {{"t-b", kOddText, "pro", kOctober, T("2026-10-08T10:00:01Z")},
               {"t-a", "A", "starter", T("2026-10-01T00:00:00Z"), T("2026-10-08T10:00:02Z")},
               {"t-c", "C", "free", T("1969-12-31T23:59:59Z"), T("2026-10-08T10:00:03Z")}};
  b.keys = {{"k-b", "t-b", KeyHash('b'), T("2026-10-08T10:00:01Z")},
            {"k-a", "t-a", KeyHash('a'), T("2026-10-08T10:00:02Z")},
            {"k-a2", "t-a", KeyHash('2'), T("2026-10-09T00:00:00Z")},
            {"k-c", "t-c", KeyHash('c'), T("2026-10-08T10:00:03Z")}};
  b.overrides = {{"t-b", "messages_sent", 12345},
                 {"t-b", "api_calls", kMax - 1},
                 {"t-a", "messages_sent", 7},
                 {"t-a", "messages_sent", std::nullopt}};
  b.key_rate_limits = {{"k-a", {100, 20, 3}}, {"k-b", {std::nullopt, 50, std::nullopt}}};
  return b;
}

// Usage in two periods, several days, hours and channels.
CommitBatch Usage() {
  CommitBatch b;
  b.usage = {
      {"t-b", "messages_sent", "whatsapp", kOctober, T("2026-10-20T23:59:59Z"), 5},
      {"t-b", "messages_sent", "sms", kOctober, T("2026-10-21T00:00:00Z"), 7},
      {"t-b", "messages_sent", "whatsapp", kNovember, T("2026-11-08T10:30:00Z"), 11},
      {"t-b", "messages_sent", "whatsapp", kNovember, T("2026-11-08T11:10:00Z"), 13},
      {"t-b", "messages_sent", "telegram", kNovember, T("2026-11-09T08:00:00Z"), 17},
      {"t-b", "api_calls", "", kNovember, T("2026-11-09T08:00:00Z"), (uint64_t{1} << 63) + 3},
      {"t-a", "messages_sent", "sms", kNovember, T("2026-11-10T12:00:00Z"), 19},
  };
  return b;
}

Decision SomeDecision(bool allowed) {
  Decision d;
  d.allowed = allowed;
  d.requested = 5;
  d.consumed = allowed ? 5 : 0;
  d.remaining = allowed ? kMax : 0;  // kMax: unlimited
  if (!allowed) d.limit = 1000;
  d.overage = allowed ? 0 : 3;
  d.period_start = kNovember;
  d.reset_at = T("2026-12-08T10:00:00Z");
  d.meter = "messages_sent";
  d.reason = allowed ? engine::DenyReason::kNone : engine::DenyReason::kQuotaExceeded;
  if (allowed) {
    d.credits = engine::CreditsUse{3, 15, 20000, 19985};
    d.reservation = engine::ReservationUse{engine::ReservationUse::State::kCommitted,
                                           "rsv_0123456789abcdef01234567_ai_tokens", 40,
                                           T("2026-11-08T10:35:00.125Z")};
  }
  return d;
}

// Idempotency records, messages, sessions, groups (one of each deleted),
// gauges and events.
CommitBatch Activity() {
  CommitBatch b;
  b.idempotency = {{"t-b", "idem-1", kMax, SomeDecision(true), T("2026-11-08T10:30:00Z")},
                   {"t-b", kOddText, 42, SomeDecision(false), T("2026-11-08T10:31:00Z")}};
  b.messages = {{"m-1", "t-b", "whatsapp", "+15550001", kOddText, "queued", kNovember},
                {"m-2", "t-a", "sms", "+15550002", "hi", "sent", T("2026-11-10T12:00:00Z")}};
  b.sessions = {
      {"t-b", "s-1", "+1555", "working", kOctober, kNovember, kNovember, kNovember, 3, kMax},
      {"t-b", "s-2", "+1556", "scan_qr", kOctober, kOctober, std::nullopt, kOctober, -1, 0},
      {"t-a", "s-3", "+1557", "stopped", kOctober, kOctober, std::nullopt, kOctober, 0, 1}};
  b.deleted_sessions = {{"t-a", "s-3"}};
  b.groups = {{"t-b", "g-1", kOddText, kOctober}, {"t-b", "g-2", "two", kNovember}};
  b.deleted_groups = {{"t-b", "g-2"}};
  b.gauges = {{"t-b", "subscribers", kMax}, {"t-a", "subscribers", 9}};
  b.reservations = {{"t-b", "rsv_0123456789abcdef01234567_ai_tokens", "ai_tokens", kMax / 2,
                     kNovember, kNovember + absl::Milliseconds(1500)}};
  b.events = {{"t-b", "lease_expired", "s-1", kOddText, kOctober},
              {"t-a", "lease_expired", "s-3", "{}", kNovember},
              {"t-b", "limit_reached", "messages_sent", "{\"limit\":1}", kNovember},
              {"t-b", "lease_expired", "s-2", "", T("2026-11-09T00:00:00Z")}};
  b.events[2].fields = {{"limit", "1", true}, {"meter", kOddText, false}};
  b.alerts = {{"t-b", "messages_sent", kOctober, kNovember, 80, 800, 1000, kOctober, std::nullopt}};
  b.subscription_changes = {
      {"chg-1", "t-b", "tenant", "starter", "pro", "upgrade", 3500, kOctober, kOctober, "applied"},
      {"chg-2", "t-b", "admin", "pro", "starter", "downgrade", -12, kNovember,
       T("2026-12-08T10:00:00Z"), "pending"}};
  b.addons = {{"addon-1", "t-b", "chatbot_sessions", 1000, 3000, kOctober, std::nullopt},
              {"addon-2", "t-b", "chatbot_sessions", kMax, 1, kOctober, kNovember}};
  b.topups = {{"top-1", "t-b", "credits", 5000, 1200, 1000, kOctober, kNovember},
              {"top-2", "t-a", "ai_tokens", kMax / 2, 0, 2000, kOctober}};
  return b;
}

// A subscription ledger as text, line by line.
std::string LedgerText(const std::vector<engine::SubscriptionChange>& changes) {
  std::string out;
  for (const engine::SubscriptionChange& c : changes) {
    absl::StrAppend(&out, c.id, " ", c.tenant_id, " ", c.actor, " ", c.from_plan, ">", c.to_plan,
                    " ", c.kind, " ", c.amount_cents, " ", absl::ToUnixSeconds(c.requested_at), " ",
                    absl::ToUnixSeconds(c.effective_at), " ", c.state, ";");
  }
  return out;
}

// A revoked key, and t-b's October closed into usage_aggregates.
CommitBatch Revocation() {
  CommitBatch b;
  b.revoked_key_ids = {"k-c"};
  b.period_closes = {
      {"t-b", {kOctober, kNovember, 0}, "pro", {{"messages_sent", 12345}}, kNovember}};
  return b;
}

std::string DailyText(const std::vector<engine::DailyRow>& rows) {
  std::string out;
  for (const auto& r : rows)
    absl::StrAppend(&out, FormatDate(r.day), " ", r.meter, " ", r.value, ";");
  return out;
}

/// One PostgreSQL server for the suite (an emptied database per test) and a
/// data dir per test holding an embedded deployment's quotum.db.
class MigrateFromSqliteTest : public PostgresSuite {
 protected:
  void SetUp() override {
    PostgresSuite::SetUp();
    if (HasFatalFailure()) return;
    dir_ = testing::MakeTempDir("quotum-migrate-");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string DbPath() const { return dir_ + "/" + store::sqlite::kDatabaseFileName; }
  std::unique_ptr<Store> OpenSqlite() const {
    auto s = SqliteStore::Open({DbPath(), false});
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  /// Fills the embedded store through the port, then closes it (the server
  /// is stopped before a migration).
  void FillSqlite() const {
    auto s = OpenSqlite();
    ASSERT_NE(s, nullptr);
    for (const CommitBatch& b : {TenantsAndKeys(), Usage(), Activity(), Revocation()}) {
      ASSERT_EQ(s->Commit(b), absl::OkStatus());
    }
  }
  absl::StatusOr<std::vector<store::migrate::TableCount>> Migrate(size_t rows_per_statement = 3) {
    SqliteToPostgresOptions o;
    o.data_dir = dir_;
    o.postgres_url = server_->url();
    o.rows_per_statement = rows_per_statement;  // several statements per table
    o.sqlite_busy_timeout = absl::Milliseconds(200);
    return CopySqliteToPostgres(o);
  }
  /// Runs `sql` on the SQLite file directly, behind the store's back.
  absl::Status SqliteExec(const std::string& sql) const {
    auto db = store::sqlite::Db::Open(DbPath());
    if (!db.ok()) return db.status();
    return (*db)->Exec(sql);
  }
  /// One value of a query on the target, as text ("" for NULL or none).
  std::string PgValue(const std::string& sql) const {
    auto conn = PgConnection::Connect(server_->url(), absl::Seconds(5));
    if (!conn.ok()) return conn.status().ToString();
    auto r = (*conn)->Exec(sql);
    if (!r.ok()) return r.status().ToString();
    return r->rows() == 0 ? "" : r->row(0).Text(0);
  }

  std::string dir_;
};

constexpr char kExpectedCounts[] =
    "tenants 3, api_keys 4, tenant_limits 2, counters 3, usage_aggregates 1, usage_hourly 7, "
    "usage_daily 6, "
    "idempotency 2, sessions 2, groups_monitored 1, key_rate_limits 2, gauges 2, reservations 1, "
    "events 0, "
    "messages 2, subscription_changes 2, addons 2, topups 2, alerts 1, outbox 4, webhooks 0, "
    "deliveries 0, "
    "delivery_attempts 0";

// The start-up stream of both stores: the same records (tenants in creation
// order in both).
void ExpectSameSnapshot(Store& sqlite, Store& pg) {
  RecordingSink a, b;
  ASSERT_EQ(sqlite.Load(absl::InfinitePast(), a), absl::OkStatus());
  ASSERT_EQ(pg.Load(absl::InfinitePast(), b), absl::OkStatus());
  EXPECT_EQ(a.order, b.order);
  EXPECT_EQ(a.usage_order, b.usage_order);
  EXPECT_EQ(a.keys_order, b.keys_order);
  EXPECT_EQ(a.sizes, b.sizes);
  EXPECT_EQ(AllFields(a.tenants), AllFields(b.tenants));
  EXPECT_EQ(AllFields(a.keys), AllFields(b.keys));
  EXPECT_EQ(SortedFields(a.overrides), SortedFields(b.overrides));
  EXPECT_EQ(SortedFields(a.counters), SortedFields(b.counters));
  EXPECT_EQ(SortedFields(a.idempotency), SortedFields(b.idempotency));
  EXPECT_EQ(SortedFields(a.sessions), SortedFields(b.sessions));
  EXPECT_EQ(SortedFields(a.groups), SortedFields(b.groups));
  EXPECT_EQ(SortedFields(a.key_rate_limits), SortedFields(b.key_rate_limits));
  EXPECT_EQ(SortedFields(a.gauges), SortedFields(b.gauges));
  EXPECT_EQ(SortedFields(a.reservations), SortedFields(b.reservations));
  EXPECT_EQ(a.reservations.size(), 1u);
  EXPECT_EQ(a.tenants.size(), 3u);
  EXPECT_EQ(a.idempotency.size(), 2u);
}

// The report reads of both stores, tenant by tenant.
void ExpectSameReads(Store& sqlite, Store& pg) {
  for (const std::string tenant : {"t-a", "t-b", "t-c"}) {
    SCOPED_TRACE(tenant);
    const absl::CivilDay from(2026, 10, 1), to(2026, 11, 30);
    EXPECT_EQ(DailyText(*sqlite.Daily(tenant, from, to)), DailyText(*pg.Daily(tenant, from, to)));
    EXPECT_EQ(SortedFields(*sqlite.Periods(tenant, absl::InfinitePast())),
              SortedFields(*pg.Periods(tenant, absl::InfinitePast())));
    EXPECT_EQ(SortedFields(*sqlite.Periods(tenant, kNovember)),
              SortedFields(*pg.Periods(tenant, kNovember)));
    for (auto [a, b] :
         {std::pair(kOctober, kNovember), std::pair(kNovember, T("2026-12-01T00:00:00Z")),
          std::pair(T("2026-11-08T11:30:00Z"), T("2026-11-09T08:00:00Z"))}) {
      EXPECT_EQ(*sqlite.Channels(tenant, "messages_sent", a, b),
                *pg.Channels(tenant, "messages_sent", a, b));
    }
    EXPECT_EQ(AllFields(*sqlite.Events(tenant, 100)), AllFields(*pg.Events(tenant, 100)));
    EXPECT_EQ(AllFields(*sqlite.Events(tenant, 2)), AllFields(*pg.Events(tenant, 2)));
    EXPECT_EQ(AllFields(*sqlite.Alerts(tenant, absl::InfinitePast(), absl::InfiniteFuture())),
              AllFields(*pg.Alerts(tenant, absl::InfinitePast(), absl::InfiniteFuture())));
    EXPECT_EQ(LedgerText(*sqlite.SubscriptionChanges(tenant)),
              LedgerText(*pg.SubscriptionChanges(tenant)));
  }
  EXPECT_EQ(LedgerText(*pg.SubscriptionChanges("t-b")),
            "chg-2 t-b admin pro>starter downgrade -12 1794132000 1796724000 pending;"
            "chg-1 t-b tenant starter>pro upgrade 3500 1791453600 1791453600 applied;");
  EXPECT_EQ(LedgerText(*sqlite.PendingPlanChanges()), LedgerText(*pg.PendingPlanChanges()));
  for (absl::Time at : {kOctober, kNovember}) {
    auto text = [](const std::vector<engine::AddonRecord>& v) {
      std::string out;
      for (const auto& a : v) {
        absl::StrAppend(&out, a.id, " ", a.tenant_id, " ", a.meter, " ", a.units, " ",
                        a.price_cents, " ", absl::ToUnixSeconds(a.started_at), " ",
                        a.ends_at ? absl::ToUnixSeconds(*a.ends_at) : -1, ";");
      }
      return out;
    };
    EXPECT_EQ(text(*sqlite.Addons("", at)), text(*pg.Addons("", at)));
    EXPECT_EQ(text(*sqlite.Addons("t-b", at)), text(*pg.Addons("t-b", at)));
  }
  {
    auto text = [](const std::vector<engine::TopupRecord>& v) {
      std::string out;
      for (const auto& t : v) {
        absl::StrAppend(&out, t.id, " ", t.tenant_id, " ", t.meter, " ", t.units, " ", t.drawn, " ",
                        t.price_cents, " ", absl::ToUnixMillis(t.bought_at), " ",
                        absl::FormatTime(t.expires_at), ";");
      }
      return out;
    };
    EXPECT_EQ(text(*sqlite.Topups("", kOctober)), text(*pg.Topups("", kOctober)));
    EXPECT_EQ(pg.Topups("", kOctober)->size(), 2u);
    EXPECT_EQ(pg.Topups("", kNovember)->size(), 1u);  // top-1 lapsed then
    EXPECT_EQ(pg.Topups("t-b", kOctober)->front().drawn, 1200u);
  }
  EXPECT_EQ(pg.Addons("", kOctober)->size(), 2u);
  EXPECT_EQ(pg.Addons("", kNovember)->size(), 1u);  // addon-2 ended then
  EXPECT_EQ(DailyText(*pg.Daily("t-b", absl::CivilDay(2026, 10, 20), absl::CivilDay(2026, 10, 21))),
            "2026-10-20 messages_sent 5;2026-10-21 messages_sent 7;");
  for (auto [tenant, id] : {std::pair("t-b", "m-1"), std::pair("t-a", "m-2"),
                            std::pair("t-a", "m-1"), std::pair("t-b", "m-3")}) {
    auto a = sqlite.FindMessage(tenant, id);
    auto b = pg.FindMessage(tenant, id);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->has_value(), b->has_value()) << tenant << " " << id;
    if (a->has_value()) {
      EXPECT_EQ(Fields(**a), Fields(**b));
    }
  }
}

// Every key through PostgreSQL's FindKey: the key (hash byte for byte,
// revocation), its rate limits, its tenant and the tenant's overrides.
void ExpectKeysFound(Store& pg) {
  const CommitBatch made = TenantsAndKeys();
  for (const engine::ApiKeyRecord& key : made.keys) {
    SCOPED_TRACE(key.key_id);
    auto found = pg.FindKey(key.hash);
    ASSERT_TRUE(found.ok()) << found.status();
    ASSERT_TRUE(found->has_value());
    const engine::KeySnapshot& snap = **found;
    engine::ApiKeyRecord expected = key;
    expected.revoked = key.key_id == "k-c";
    EXPECT_EQ(Fields(snap.key), Fields(expected));
    EXPECT_EQ(snap.key.hash.size(), 32u);
    for (const auto& t : made.tenants) {
      if (t.id == key.tenant_id) {
        EXPECT_EQ(Fields(snap.tenant), Fields(t));
      }
    }
    engine::KeyRateLimits limits;
    for (const auto& k : made.key_rate_limits) {
      if (k.key_id == key.key_id) limits = k.limits;
    }
    EXPECT_EQ(snap.limits, limits);
    EXPECT_EQ(snap.overrides.size(), key.tenant_id == "t-b" ? 2u : 0u);
  }
  auto unknown = pg.FindKey(KeyHash('z'));
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
}

TEST_F(MigrateFromSqliteTest, CopiesEveryTableSoThatPostgresAnswersAsSqliteDid) {
  FillSqlite();
  auto counts = Migrate();
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(FormatCounts(*counts), kExpectedCounts);
  auto sqlite = OpenSqlite();
  auto pg = PgStore::Open({server_->url()});
  ASSERT_TRUE(pg.ok()) << pg.status();
  ASSERT_NE(sqlite, nullptr);
  ExpectSameSnapshot(*sqlite, **pg);
  ExpectSameReads(*sqlite, **pg);
  ExpectKeysFound(**pg);
  // What the scale-out store records afterwards follows the copied rows:
  // a new event is the newest, a new tenant streams after the old ones.
  CommitBatch later;
  later.tenants = {{"t-0", "new", "pro", kNovember, kNovember}};
  later.events = {{"t-b", "later", "x", "", kOctober}};
  ASSERT_EQ((*pg)->Commit(later), absl::OkStatus());
  auto events = (*pg)->Events("t-b", 1);
  ASSERT_TRUE(events.ok() && events->size() == 1);
  EXPECT_EQ(events->front().type, "later");
  RecordingSink after;
  ASSERT_EQ((*pg)->Load(absl::InfinitePast(), after), absl::OkStatus());
  ASSERT_EQ(after.tenants.size(), 4u);
  EXPECT_EQ(after.tenants.back().id, "t-0");
}

TEST_F(MigrateFromSqliteTest, OneRowPerStatementAndAnEmptyStoreAreCopiedToo) {
  ASSERT_NE(OpenSqlite(), nullptr);  // an embedded deployment that never made a tenant
  auto counts = Migrate(1);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->size(), 23u);
  for (const auto& c : *counts) EXPECT_EQ(c.rows, 0) << c.table;
  ASSERT_TRUE(server_->ResetDatabase("quotum")) << server_->error();
  FillSqlite();
  counts = Migrate(1);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(FormatCounts(*counts), kExpectedCounts);
}

TEST_F(MigrateFromSqliteTest, ASecondMigrationIntoTheSameDatabaseIsRefusedAndChangesNothing) {
  FillSqlite();
  ASSERT_TRUE(Migrate().ok());
  {
    auto s = OpenSqlite();
    CommitBatch more;
    more.tenants = {{"t-d", "D", "pro", kNovember, kNovember}};
    ASSERT_EQ(s->Commit(more), absl::OkStatus());
  }
  auto again = Migrate();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(
      absl::StrContains(again.status().message(), "already holds Quotum data (in tenants, "))
      << again.status();
  EXPECT_EQ(PgValue("SELECT COUNT(*) FROM tenants"), "3");
  EXPECT_EQ(PgValue("SELECT COUNT(*) FROM outbox"), "4");
  EXPECT_EQ(PgValue("SELECT string_agg(id, ',' ORDER BY seq) FROM tenants"), "t-b,t-a,t-c");
}

TEST_F(MigrateFromSqliteTest, ADirWithoutAQuotumDatabaseIsRefusedBeforePostgresIsTouched) {
  auto expect_refused = [&](const std::string& dir, absl::StatusCode code, const char* words) {
    SqliteToPostgresOptions o;
    o.data_dir = dir;
    o.postgres_url = server_->url();
    auto r = CopySqliteToPostgres(o);
    ASSERT_FALSE(r.ok()) << dir;
    EXPECT_EQ(r.status().code(), code) << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), words)) << r.status();
  };
  expect_refused(dir_ + "/missing", absl::StatusCode::kNotFound, "is not a directory");
  expect_refused(dir_, absl::StatusCode::kNotFound, "holds no Quotum database (no quotum.db)");
  EXPECT_FALSE(std::filesystem::exists(DbPath()));  // read-only: never created
  { std::ofstream(DbPath()) << "this is not a database, but long enough to look like one......"; }
  expect_refused(dir_, absl::StatusCode::kFailedPrecondition, "is not a SQLite database");
  std::filesystem::remove(DbPath());
  ASSERT_EQ(SqliteExec("CREATE TABLE notes(x)"), absl::OkStatus());
  expect_refused(dir_, absl::StatusCode::kFailedPrecondition, "is not a Quotum database");
  ASSERT_EQ(SqliteExec("CREATE TABLE tenants(id)"), absl::OkStatus());
  expect_refused(dir_, absl::StatusCode::kFailedPrecondition, "has no api_keys table");
  // A journal with records the database lacks (a server killed before it
  // folded them) is refused too; an empty one is not in the way.
  { std::ofstream(dir_ + "/journal-0-a.qj"); }
  expect_refused(dir_, absl::StatusCode::kFailedPrecondition, "has no api_keys table");
  { std::ofstream(dir_ + "/journal-0-a.qj") << "records"; }
  expect_refused(dir_, absl::StatusCode::kFailedPrecondition,
                 "holds journal records that quotum.db lacks (journal-0-a.qj)");
  EXPECT_EQ(PgValue("SELECT to_regclass('tenants') IS NULL"), "t");  // no schema either
}

TEST_F(MigrateFromSqliteTest, ALockedDatabaseFailsClearlyAndWritesNothing) {
  FillSqlite();
  auto holder = store::sqlite::Db::Open(DbPath());
  ASSERT_TRUE(holder.ok());
  // A connection that keeps the file to itself, as a writer that never lets go.
  ASSERT_EQ((*holder)->Exec("PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; "
                            "DELETE FROM gauges WHERE meter='none'"),
            absl::OkStatus());
  auto r = Migrate();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "is locked: stop the quotum server"))
      << r.status();
  EXPECT_EQ(PgValue("SELECT to_regclass('tenants') IS NULL"), "t");
  ASSERT_EQ((*holder)->Exec("COMMIT"), absl::OkStatus());
  holder->reset();
  EXPECT_TRUE(Migrate().ok());
}

TEST_F(MigrateFromSqliteTest, AValueThatCannotBeCopiedExactlyRollsTheWholeCopyBack) {
  FillSqlite();
  struct Case {
    const char* spoil;    // SQL on the SQLite file
    const char* message;  // what the refusal says
    const char* repair;
  } cases[] = {
      // SQLite keeps text in an INTEGER column; messages is the last table copied.
      {"UPDATE messages SET created_at='soon' WHERE id='m-2'",
       "copying messages: column created_at holds text where an integer belongs",
       "UPDATE messages SET created_at=1 WHERE id='m-2'"},
      // A day PostgreSQL would read, but give back spelled otherwise.
      {"UPDATE usage_daily SET day='2026-11-8' WHERE day='2026-11-08'",
       "copying usage_daily: column day holds \"2026-11-8\", not a YYYY-MM-DD day",
       "UPDATE usage_daily SET day='2026-11-08' WHERE day='2026-11-8'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.spoil);
    ASSERT_EQ(SqliteExec(c.spoil), absl::OkStatus());
    auto r = Migrate();
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(absl::StrContains(r.status().message(), c.message)) << r.status();
    EXPECT_EQ(PgValue("SELECT COUNT(*) FROM tenants"), "0");  // all or nothing
    EXPECT_EQ(PgValue("SELECT COUNT(*) FROM usage_daily"), "0");
    ASSERT_EQ(SqliteExec(c.repair), absl::OkStatus());
  }
  EXPECT_TRUE(Migrate().ok());
}

}  // namespace
}  // namespace quotum::contract
