#pragma once

namespace quotum::store::sqlite {

/// The embedded store's schema. Integers that the engine treats as unsigned
/// 64-bit are stored bit-for-bit in SQLite's signed INTEGER. Instants are Unix
/// seconds (UTC); days are 'YYYY-MM-DD'.
/// Columns the messages table gained with the queue (SPEC §2 "Deferred
/// delivery"), added to stores made before it; instants in Unix ms.
inline constexpr const char* kMessageQueueColumns[] = {
    "session_id TEXT NOT NULL DEFAULT ''",
    "type TEXT NOT NULL DEFAULT 'text'",
    "send_at_ms INTEGER",
    "due_at_ms INTEGER",
    "seq INTEGER NOT NULL DEFAULT 0",
    "reason TEXT NOT NULL DEFAULT ''",
    "release_attempts INTEGER NOT NULL DEFAULT 0",
    "released_at_ms INTEGER",
    "sent_at_ms INTEGER",
    "updated_at_ms INTEGER NOT NULL DEFAULT 0",
    "paced INTEGER NOT NULL DEFAULT 0",
    "delivery_attempts INTEGER NOT NULL DEFAULT 0",
};

/// The queue's indexes, made once its columns exist.
inline constexpr const char kMessageQueueIndexes[] = R"sql(
CREATE INDEX IF NOT EXISTS messages_due ON messages(due_at_ms, seq, id)
  WHERE status IN ('queued', 'releasing', 'released');
CREATE INDEX IF NOT EXISTS messages_by_tenant ON messages(tenant_id, created_at, id);
CREATE INDEX IF NOT EXISTS messages_released ON messages(released_at_ms)
  WHERE released_at_ms IS NOT NULL AND session_id <> '';
)sql";

/// Columns the sessions table gained with messaging tiers (TierLevel).
inline constexpr const char* kSessionTierColumns[] = {
    "tier_level INTEGER NOT NULL DEFAULT 0",
    "tier_since_ms INTEGER NOT NULL DEFAULT 0",
    "tier_qualified_ms INTEGER NOT NULL DEFAULT 0",
};

inline constexpr const char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS tenants(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  plan TEXT NOT NULL,
  subscription_start INTEGER NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys(
  key_id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  hash BLOB NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER);
CREATE TABLE IF NOT EXISTS tenant_limits(
  tenant_id TEXT NOT NULL,
  meter TEXT NOT NULL,
  limit_value INTEGER NOT NULL,
  PRIMARY KEY(tenant_id, meter)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters(
  tenant_id TEXT NOT NULL,
  meter TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  value INTEGER NOT NULL,
  PRIMARY KEY(tenant_id, meter, period_start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_hourly(
  tenant_id TEXT NOT NULL,
  meter TEXT NOT NULL,
  channel TEXT NOT NULL,
  hour INTEGER NOT NULL,
  value INTEGER NOT NULL,
  PRIMARY KEY(tenant_id, meter, hour, channel)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_daily(
  tenant_id TEXT NOT NULL,
  day TEXT NOT NULL,
  meter TEXT NOT NULL,
  channel TEXT NOT NULL,
  value INTEGER NOT NULL,
  PRIMARY KEY(tenant_id, day, meter, channel)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency(
  tenant_id TEXT NOT NULL,
  key TEXT NOT NULL,
  fingerprint INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  allowed INTEGER NOT NULL,
  requested INTEGER NOT NULL,
  consumed INTEGER NOT NULL,
  remaining INTEGER NOT NULL,
  limit_value INTEGER,
  overage INTEGER NOT NULL,
  period_start INTEGER NOT NULL,
  reset_at INTEGER NOT NULL,
  meter TEXT NOT NULL,
  reason INTEGER NOT NULL,
  -- EncodeDecisionExtras: the credits and the reservation of the decision
  extra TEXT,
  PRIMARY KEY(tenant_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency(created_at);
CREATE TABLE IF NOT EXISTS sessions(
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  phone TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  first_working_at INTEGER,
  last_heartbeat INTEGER NOT NULL,
  warmup_day INTEGER NOT NULL,
  warmup_count INTEGER NOT NULL,
  PRIMARY KEY(tenant_id, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups_monitored(
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY(tenant_id, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS key_rate_limits(
  key_id TEXT PRIMARY KEY,
  general INTEGER,
  messages INTEGER,
  sessions INTEGER);
CREATE TABLE IF NOT EXISTS gauges(
  tenant_id TEXT NOT NULL,
  meter TEXT NOT NULL,
  value INTEGER NOT NULL,
  PRIMARY KEY(tenant_id, meter)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL,
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail TEXT NOT NULL,
  at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_tenant ON events(tenant_id, id);
CREATE TABLE IF NOT EXISTS messages(
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  recipient TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS applied_entries(
  id TEXT PRIMARY KEY,
  applied_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS applied_entries_at ON applied_entries(applied_at);
CREATE TABLE IF NOT EXISTS fail_open_charges(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  meter TEXT NOT NULL,
  channel TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  period_end INTEGER NOT NULL,
  at INTEGER NOT NULL,
  now INTEGER NOT NULL,
  units INTEGER NOT NULL,
  api_call INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS subscription_changes(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  actor TEXT NOT NULL,
  from_plan TEXT NOT NULL,
  to_plan TEXT NOT NULL,
  kind TEXT NOT NULL,
  amount_cents INTEGER NOT NULL,
  requested_at INTEGER NOT NULL,
  effective_at INTEGER NOT NULL,
  state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS subscription_changes_tenant ON subscription_changes(tenant_id, seq);
CREATE TABLE IF NOT EXISTS addons(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  meter TEXT NOT NULL,
  units INTEGER NOT NULL,
  price_cents INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  ends_at INTEGER);
CREATE INDEX IF NOT EXISTS addons_tenant ON addons(tenant_id, seq);
-- One-off prepaid packs; expires_at_ms NULL: never lapses.
CREATE TABLE IF NOT EXISTS topups(
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  meter TEXT NOT NULL,
  units INTEGER NOT NULL,
  drawn INTEGER NOT NULL,
  price_cents INTEGER NOT NULL,
  bought_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER);
CREATE INDEX IF NOT EXISTS topups_tenant ON topups(tenant_id, expires_at_ms);
-- Units held against a meter's limit until committed, released or expired
-- (instants in Unix milliseconds).
CREATE TABLE IF NOT EXISTS reservations(
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  meter TEXT NOT NULL,
  units INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  PRIMARY KEY(tenant_id, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_aggregates(
  tenant_id TEXT NOT NULL,
  meter TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  period_end INTEGER NOT NULL,
  value INTEGER NOT NULL,
  limit_value INTEGER,
  plan TEXT NOT NULL,
  closed_at INTEGER NOT NULL,
  PRIMARY KEY(tenant_id, meter, period_start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts(
  tenant_id TEXT NOT NULL,
  meter TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  threshold INTEGER NOT NULL,
  period_end INTEGER NOT NULL,
  value INTEGER NOT NULL,
  limit_value INTEGER NOT NULL,
  at INTEGER NOT NULL,
  resolved_at INTEGER,
  PRIMARY KEY(tenant_id, meter, period_start, threshold)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_at ON alerts(tenant_id, at);
-- Every event, in the commit of the change that made it: the tenant's event
-- log and the outbox the relay delivers from (relayed = 0 until it has
-- handed the event to the tenant's webhooks).
CREATE TABLE IF NOT EXISTS outbox(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail TEXT NOT NULL,
  fields TEXT NOT NULL,
  at INTEGER NOT NULL,
  relayed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS outbox_tenant ON outbox(tenant_id, seq);
CREATE INDEX IF NOT EXISTS outbox_unrelayed ON outbox(seq) WHERE relayed = 0;
-- Events of stores made before the outbox move into it, as relayed: they
-- were never meant for webhooks.
INSERT OR IGNORE INTO outbox(id,tenant_id,type,subject,detail,fields,at,relayed)
  SELECT 'evt_legacy_' || id, tenant_id, type, subject, detail, '', at, 1 FROM events ORDER BY id;
DELETE FROM events;
CREATE TABLE IF NOT EXISTS webhooks(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  url TEXT NOT NULL,
  events TEXT NOT NULL,
  secret TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  deleted_at INTEGER);
CREATE INDEX IF NOT EXISTS webhooks_tenant ON webhooks(tenant_id, seq);
CREATE TABLE IF NOT EXISTS deliveries(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  webhook_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  budget_from INTEGER NOT NULL,
  next_at_ms INTEGER NOT NULL,
  last_status INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  finished_at INTEGER,
  UNIQUE(webhook_id, event_id));
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(webhook_id, seq)
  WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS delivery_attempts(
  delivery_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  at INTEGER NOT NULL,
  status INTEGER NOT NULL,
  error TEXT NOT NULL,
  took_ms INTEGER NOT NULL,
  PRIMARY KEY(delivery_id, attempt)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal_marks(
  journal INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL);
)sql";

}  // namespace quotum::store::sqlite
