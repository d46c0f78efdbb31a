#include "quotum/store/postgres/migrations.h"

#include "absl/strings/str_cat.h"

namespace quotum::store::postgres {
namespace {

// Version 1 mirrors the SQLite schema (store/sqlite/schema.h), with these
// choices:
//  - Instants are BIGINT Unix seconds (UTC), as in SQLite: the engine keeps
//    whole seconds, every absl::Time it stores round-trips exactly (also far
//    past/future ones a TIMESTAMPTZ cannot hold), and no session time zone or
//    DateStyle can change a value. Hours are BIGINT seconds on an hour; days
//    (usage_daily.day) are DATE.
//  - Values the engine treats as unsigned 64-bit (counters, fingerprints,
//    limits, remaining = UINT64_MAX for unlimited) are stored bit-for-bit in
//    signed BIGINT.
//  - Identifiers and channel/meter names are TEXT COLLATE "C": byte order,
//    which the start-up stream follows like SQLite's, and that an index
//    serves whatever the database's default collation is.
//  - tenants and api_keys have an identity column `seq`: the start-up
//    stream sends them in creation order (SQLite's rowid order).
//  - The SQLite key hash (BLOB) is BYTEA; booleans are BOOLEAN.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE tenants(
  seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
  id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT NOT NULL,
  plan TEXT NOT NULL,
  subscription_start BIGINT NOT NULL,
  created_at BIGINT NOT NULL);
CREATE TABLE api_keys(
  seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
  key_id TEXT COLLATE "C" PRIMARY KEY,
  tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
  hash BYTEA NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT);
CREATE TABLE tenant_limits(
  tenant_id TEXT COLLATE "C" NOT NULL,
  meter TEXT COLLATE "C" NOT NULL,
  limit_value BIGINT NOT NULL,
  PRIMARY KEY(tenant_id, meter));
CREATE TABLE counters(
  tenant_id TEXT COLLATE "C" NOT NULL,
  meter TEXT COLLATE "C" NOT NULL,
  period_start BIGINT NOT NULL,
  value BIGINT NOT NULL,
  PRIMARY KEY(tenant_id, meter, period_start));
CREATE TABLE usage_hourly(
  tenant_id TEXT COLLATE "C" NOT NULL,
  meter TEXT COLLATE "C" NOT NULL,
  channel TEXT COLLATE "C" NOT NULL,
  hour BIGINT NOT NULL,
  value BIGINT NOT NULL,
  PRIMARY KEY(tenant_id, meter, hour, channel));
CREATE TABLE usage_daily(
  tenant_id TEXT COLLATE "C" NOT NULL,
  day DATE NOT NULL,
  meter TEXT COLLATE "C" NOT NULL,
  channel TEXT COLLATE "C" NOT NULL,
  value BIGINT NOT NULL,
  PRIMARY KEY(tenant_id, day, meter, channel));
CREATE TABLE idempotency(
  tenant_id TEXT COLLATE "C" NOT NULL,
  key TEXT COLLATE "C" NOT NULL,
  fingerprint BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  allowed BOOLEAN NOT NULL,
  requested BIGINT NOT NULL,
  consumed BIGINT NOT NULL,
  remaining BIGINT NOT NULL,
  limit_value BIGINT,
  overage BIGINT NOT NULL,
  period_start BIGINT NOT NULL,
  reset_at BIGINT NOT NULL,
  meter TEXT NOT NULL,
  reason SMALLINT NOT NULL,
  PRIMARY KEY(tenant_id, key));
CREATE INDEX idempotency_created ON idempotency(created_at);
CREATE TABLE sessions(
  tenant_id TEXT COLLATE "C" NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  phone TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  first_working_at BIGINT,
  last_heartbeat BIGINT NOT NULL,
  warmup_day BIGINT NOT NULL,
  warmup_count BIGINT NOT NULL,
  PRIMARY KEY(tenant_id, id));
CREATE TABLE groups_monitored(
  tenant_id TEXT COLLATE "C" NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  name TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY(tenant_id, id));
CREATE TABLE key_rate_limits(
  key_id TEXT COLLATE "C" PRIMARY KEY,
  general BIGINT,
  messages BIGINT,
  sessions BIGINT);
CREATE TABLE gauges(
  tenant_id TEXT COLLATE "C" NOT NULL,
  meter TEXT COLLATE "C" NOT NULL,
  value BIGINT NOT NULL,
  PRIMARY KEY(tenant_id, meter));
CREATE TABLE events(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id TEXT COLLATE "C" NOT NULL,
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail TEXT NOT NULL,
  at BIGINT NOT NULL);
CREATE INDEX events_tenant ON events(tenant_id, id);
CREATE TABLE messages(
  id TEXT COLLATE "C" PRIMARY KEY,
  tenant_id TEXT COLLATE "C" NOT NULL,
  channel TEXT NOT NULL,
  recipient TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL);
)sql";

// The ids of Redis stream entries already applied (CommitBatch::applied_entries).
constexpr char kSchemaV2[] = R"sql(
CREATE TABLE applied_entries(
  id TEXT COLLATE "C" PRIMARY KEY,
  applied_at BIGINT NOT NULL);
CREATE INDEX applied_entries_at ON applied_entries(applied_at);
)sql";

// Leases for background work that runs once across instances (Store::HoldLease).
constexpr char kSchemaV3[] = R"sql(
CREATE TABLE leases(
  name TEXT COLLATE "C" PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at_ms BIGINT NOT NULL);
)sql";

// Charges admitted under the fail-open policy, until reconciled into Redis.
constexpr char kSchemaV4[] = R"sql(
CREATE TABLE fail_open_charges(
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT COLLATE "C" NOT NULL UNIQUE,
  tenant_id TEXT COLLATE "C" NOT NULL,
  meter TEXT NOT NULL,
  channel TEXT NOT NULL,
  period_start BIGINT NOT NULL,
  period_end BIGINT NOT NULL,
  at BIGINT NOT NULL,
  now BIGINT NOT NULL,
  units BIGINT NOT NULL,
  api_call BOOLEAN NOT NULL);
)sql";

// The subscription ledger (plan changes, applied, pending or cancelled) and
// add-on packs.
constexpr char kSchemaV5[] = R"sql(
CREATE TABLE subscription_changes(
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT COLLATE "C" NOT NULL UNIQUE,
  tenant_id TEXT COLLATE "C" NOT NULL,
  actor TEXT NOT NULL,
  from_plan TEXT NOT NULL,
  to_plan TEXT NOT NULL,
  kind TEXT NOT NULL,
  amount_cents BIGINT NOT NULL,
  requested_at BIGINT NOT NULL,
  effective_at BIGINT NOT NULL,
  state TEXT NOT NULL);
CREATE INDEX subscription_changes_tenant ON subscription_changes(tenant_id, seq);
CREATE TABLE addons(
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT COLLATE "C" NOT NULL UNIQUE,
  tenant_id TEXT COLLATE "C" NOT NULL,
  meter TEXT NOT NULL,
  units BIGINT NOT NULL,
  price_cents BIGINT NOT NULL,
  started_at BIGINT NOT NULL,
  ends_at BIGINT);
CREATE INDEX addons_tenant ON addons(tenant_id, seq);
)sql";

// Alerts, the outbox (events move into it, as relayed: they were never meant
// for webhooks), webhooks and their deliveries.
constexpr char kSchemaV6[] = R"sql(
CREATE TABLE alerts(
  tenant_id TEXT COLLATE "C" NOT NULL,
  meter TEXT COLLATE "C" NOT NULL,
  period_start BIGINT NOT NULL,
  threshold INTEGER NOT NULL,
  period_end BIGINT NOT NULL,
  value BIGINT NOT NULL,
  limit_value BIGINT NOT NULL,
  at BIGINT NOT NULL,
  resolved_at BIGINT,
  PRIMARY KEY(tenant_id, meter, period_start, threshold));
CREATE INDEX alerts_at ON alerts(tenant_id, at);
CREATE TABLE outbox(
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT COLLATE "C" NOT NULL UNIQUE,
  tenant_id TEXT COLLATE "C" NOT NULL,
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail TEXT NOT NULL,
  fields TEXT NOT NULL,
  at BIGINT NOT NULL,
  relayed BOOLEAN NOT NULL DEFAULT false);
CREATE INDEX outbox_tenant ON outbox(tenant_id, seq);
CREATE INDEX outbox_unrelayed ON outbox(seq) WHERE NOT relayed;
INSERT INTO outbox(id, tenant_id, type, subject, detail, fields, at, relayed)
  SELECT 'evt_legacy_' || id, tenant_id, type, subject, detail, '', at, true FROM events ORDER BY id;
DELETE FROM events;
CREATE TABLE webhooks(
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT COLLATE "C" NOT NULL UNIQUE,
  tenant_id TEXT COLLATE "C" NOT NULL,
  url TEXT NOT NULL,
  events TEXT NOT NULL,
  secret TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  deleted_at BIGINT);
CREATE INDEX webhooks_tenant ON webhooks(tenant_id, seq);
CREATE TABLE deliveries(
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT COLLATE "C" NOT NULL UNIQUE,
  webhook_id TEXT COLLATE "C" NOT NULL,
  tenant_id TEXT COLLATE "C" NOT NULL,
  event_id TEXT COLLATE "C" NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  budget_from INTEGER NOT NULL,
  next_at_ms BIGINT NOT NULL,
  last_status INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  finished_at BIGINT,
  UNIQUE(webhook_id, event_id));
CREATE INDEX deliveries_pending ON deliveries(webhook_id, seq) WHERE state = 'pending';
CREATE TABLE delivery_attempts(
  delivery_id TEXT COLLATE "C" NOT NULL,
  attempt INTEGER NOT NULL,
  at BIGINT NOT NULL,
  status INTEGER NOT NULL,
  error TEXT NOT NULL,
  took_ms BIGINT NOT NULL,
  PRIMARY KEY(delivery_id, attempt));
)sql";

// Closed billing periods, out of the counters table.
constexpr char kSchemaV7[] = R"sql(
CREATE TABLE usage_aggregates(
  tenant_id TEXT COLLATE "C" NOT NULL,
  meter TEXT COLLATE "C" NOT NULL,
  period_start BIGINT NOT NULL,
  period_end BIGINT NOT NULL,
  value BIGINT NOT NULL,
  limit_value BIGINT,
  plan TEXT NOT NULL,
  closed_at BIGINT NOT NULL,
  PRIMARY KEY(tenant_id, meter, period_start));
)sql";

// Units held by reservations (embedded mode writes them; scale-out keeps
// them in Redis). Instants in Unix milliseconds.
constexpr char kSchemaV8[] = R"sql(
CREATE TABLE reservations(
  tenant_id TEXT COLLATE "C" NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  meter TEXT COLLATE "C" NOT NULL,
  units BIGINT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL,
  PRIMARY KEY(tenant_id, id));
)sql";

// The credits and reservation of an idempotent decision (EncodeDecisionExtras).
constexpr char kSchemaV9[] = R"sql(
ALTER TABLE idempotency ADD COLUMN extra TEXT;
)sql";

// One-off prepaid packs; expires_at_ms NULL: never lapses.
constexpr char kSchemaV10[] = R"sql(
CREATE TABLE topups(
  id TEXT COLLATE "C" PRIMARY KEY,
  tenant_id TEXT COLLATE "C" NOT NULL,
  meter TEXT COLLATE "C" NOT NULL,
  units BIGINT NOT NULL,
  drawn BIGINT NOT NULL,
  price_cents BIGINT NOT NULL,
  bought_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT);
CREATE INDEX topups_tenant ON topups(tenant_id, expires_at_ms);
)sql";

// The message queue (SPEC §2 "Deferred delivery"); instants in Unix ms.
constexpr char kSchemaV11[] = R"sql(
ALTER TABLE messages
  ADD COLUMN session_id TEXT COLLATE "C" NOT NULL DEFAULT '',
  ADD COLUMN type TEXT NOT NULL DEFAULT 'text',
  ADD COLUMN send_at_ms BIGINT,
  ADD COLUMN due_at_ms BIGINT,
  ADD COLUMN seq BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN reason TEXT NOT NULL DEFAULT '',
  ADD COLUMN release_attempts BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN released_at_ms BIGINT,
  ADD COLUMN sent_at_ms BIGINT,
  ADD COLUMN updated_at_ms BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN paced BOOLEAN NOT NULL DEFAULT false,
  ADD COLUMN delivery_attempts BIGINT NOT NULL DEFAULT 0;
CREATE INDEX messages_due ON messages(due_at_ms, seq, id)
  WHERE status IN ('queued', 'releasing', 'released');
CREATE INDEX messages_by_tenant ON messages(tenant_id, created_at, id);
)sql";

// Messaging tiers: a session's level (TierLevel), and the index that finds
// the recipients of the last 7 days' sends at start-up.
constexpr char kSchemaV12[] = R"sql(
ALTER TABLE sessions
  ADD COLUMN tier_level BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN tier_since_ms BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN tier_qualified_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX messages_released ON messages(released_at_ms)
  WHERE released_at_ms IS NOT NULL AND session_id <> '';
)sql";

// Every tenant's read (Store::AllTenants) looks for the pending plan
// changes of all tenants: few rows among a ledger that only grows.
constexpr char kSchemaV13[] = R"sql(
CREATE INDEX subscription_changes_pending ON subscription_changes(tenant_id)
  WHERE state = 'pending';
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema (mirrors the SQLite store's)", kSchemaV1},
    {2, "applied stream entries (the facts drain)", kSchemaV2},
    {3, "leases for background work run once across instances", kSchemaV3},
    {4, "fail-open charges awaiting reconciliation", kSchemaV4},
    {5, "the subscription ledger (plan changes) and add-ons", kSchemaV5},
    {6, "alerts, the event outbox, webhooks and their deliveries", kSchemaV6},
    {7, "usage_aggregates: closed billing periods", kSchemaV7},
    {8, "reservations: units held until committed, released or expired", kSchemaV8},
    {9, "idempotency.extra: a replayed decision's credits and reservation", kSchemaV9},
    {10, "topups: one-off prepaid packs and what was drawn of them", kSchemaV10},
    {11, "messages: the queue of scheduled and held sends", kSchemaV11},
    {12, "sessions: messaging tiers", kSchemaV12},
    {13, "an index of pending plan changes", kSchemaV13},
};

constexpr char kCreateMigrationsTable[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations("
    "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

absl::StatusOr<int> CurrentVersion(PgConnection& conn) {
  auto r = conn.Exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!r.ok()) return r.status();
  return static_cast<int>(r->row(0).Int(0));
}

absl::Status Apply(PgConnection& conn, const Migration& m) {
  if (auto r = conn.Exec(m.sql); !r.ok()) {
    return absl::Status(
        r.status().code(),
        absl::StrCat("migration ", m.version, " (", m.description, "): ", r.status().message()));
  }
  return conn
      .Exec("INSERT INTO schema_migrations(version, description) VALUES($1, $2)",
            {IntParam(m.version), TextParam(m.description)})
      .status();
}

// The body of the migration transaction, after the lock is held.
absl::StatusOr<MigrationResult> MigrateLocked(PgConnection& conn) {
  if (auto r = conn.Exec(kCreateMigrationsTable); !r.ok()) return r.status();
  auto current = CurrentVersion(conn);
  if (!current.ok()) return current.status();
  MigrationResult result{*current, LatestSchemaVersion()};
  if (result.from_version > result.to_version) {
    return absl::FailedPreconditionError(
        absl::StrCat("postgres: the database schema is at version ", result.from_version,
                     ", newer than this build of quotum knows (", result.to_version,
                     "): run a newer quotum, or restore a database of this version"));
  }
  for (const Migration& m : Migrations()) {
    if (m.version <= result.from_version) continue;
    if (absl::Status s = Apply(conn, m); !s.ok()) return s;
  }
  return result;
}

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

int LatestSchemaVersion() { return Migrations().back().version; }

absl::StatusOr<MigrationResult> Migrate(PgConnection& conn) {
  // READ COMMITTED: each statement after the lock sees what a migration run
  // that held the lock before committed.
  if (auto r = conn.Exec("BEGIN ISOLATION LEVEL READ COMMITTED"); !r.ok()) return r.status();
  auto result = [&]() -> absl::StatusOr<MigrationResult> {
    auto locked = conn.Exec("SELECT pg_advisory_xact_lock($1)", {IntParam(kMigrationLockKey)});
    if (!locked.ok()) return locked.status();
    return MigrateLocked(conn);
  }();
  if (result.ok()) {
    if (auto r = conn.Exec("COMMIT"); !r.ok()) return r.status();
  } else if (!conn.broken()) {
    (void)conn.Exec("ROLLBACK");
  }
  return result;
}

absl::StatusOr<MigrationResult> Migrate(const std::string& conninfo,
                                        absl::Duration connect_timeout) {
  auto conn = PgConnection::Connect(conninfo, connect_timeout);
  if (!conn.ok()) return conn.status();
  return Migrate(**conn);
}

}  // namespace quotum::store::postgres
