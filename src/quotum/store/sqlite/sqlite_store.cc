#include "quotum/store/sqlite/sqlite_store.h"

#include <pthread.h>

#include <optional>
#include <tuple>

#include "absl/container/btree_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "quotum/base/status_macros.h"
#include "quotum/core/billing_period.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/decision_codec.h"
#include "quotum/engine/events.h"
#include "quotum/store/column_values.h"
#include "quotum/store/message_columns.h"
#include "quotum/store/reservation_rows.h"
#include "quotum/store/sqlite/schema.h"

namespace quotum::store::sqlite {
namespace {

using engine::CommitBatch;

std::string DayOf(absl::Time t) { return FormatDate(absl::ToCivilDay(t, absl::UTCTimeZone())); }
int64_t HourOf(absl::Time t) { return FloorTo(Secs(t), 3600); }

}  // namespace

struct SqliteStore::WriteStatements {
  Stmt begin, commit, rollback, journal_mark;
  Stmt tenant, key, revoke, set_limit, clear_limit, counter, counter_set, hourly, daily, idem,
      message;
  Stmt counter_take, hourly_take, daily_take;
  Stmt session, delete_session, group, delete_group, key_limits, gauge, event;
  Stmt applied, forget_applied, fail_open, reconciled, plan_change, set_plan, addon;
  Stmt alert, resolve_alert;
  Stmt close_move, close_limit, close_delete;
  Stmt reservation, end_reservation, purge_reservations, topup, topup_draw;
};

SqliteStore::~SqliteStore() {
  {
    MutexLock lock(&checkpoint_mu_);
    stop_checkpoints_ = true;
  }
  checkpoint_wake_.Signal();
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
}

// About 64 MiB of 4 KiB pages.
constexpr int kRestartAtFrames = 16384;

void SqliteStore::RunCheckpoints() {
  for (;;) {
    {
      MutexLock lock(&checkpoint_mu_);
      // A spurious wake-up only brings a checkpoint forward.
      if (!stop_checkpoints_) {
        checkpoint_wake_.WaitWithTimeout(&checkpoint_mu_, absl::Milliseconds(200));
      }
      if (stop_checkpoints_) break;
    }
    // PASSIVE never blocks the writer; a busy or partial checkpoint is simply
    // continued on the next round. Under continuous commits it never reaches
    // the moving end of the log, so the log never restarts: past a size, one
    // RESTART checkpoint (it briefly holds the writer off, with most frames
    // already copied) lets the next commit start the log over.
    int log_frames = 0, checkpointed = 0;
    sqlite3_wal_checkpoint_v2(checkpointer_->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                              &checkpointed);
    if (log_frames > kRestartAtFrames) {
      sqlite3_wal_checkpoint_v2(checkpointer_->raw(), nullptr, SQLITE_CHECKPOINT_RESTART,
                                &log_frames, &checkpointed);
    }
  }
  checkpointer_->Exec("PRAGMA wal_checkpoint(PASSIVE)").IgnoreError();
}

namespace {

using WriteStatements = SqliteStore::WriteStatements;

struct StatementSql {
  Stmt WriteStatements::*stmt;
  const char* sql;
};

// The writer's statements, prepared once at Open.
const StatementSql kWriteSql[] = {
    {&WriteStatements::begin, "BEGIN IMMEDIATE"},
    {&WriteStatements::journal_mark,
     "INSERT INTO journal_marks(journal,seq) VALUES(?,?) ON CONFLICT(journal) DO UPDATE SET "
     "seq=MAX(seq,excluded.seq)"},
    {&WriteStatements::commit, "COMMIT"},
    {&WriteStatements::rollback, "ROLLBACK"},
    {&WriteStatements::tenant,
     "INSERT INTO tenants(id,name,plan,subscription_start,created_at) VALUES(?,?,?,?,?)"},
    {&WriteStatements::key,
     "INSERT INTO api_keys(key_id,tenant_id,hash,created_at) VALUES(?,?,?,?)"},
    {&WriteStatements::revoke,
     "UPDATE api_keys SET revoked_at=? WHERE key_id=? AND revoked_at IS NULL"},
    {&WriteStatements::set_limit,
     "INSERT INTO tenant_limits(tenant_id,meter,limit_value) VALUES(?,?,?) "
     "ON CONFLICT(tenant_id,meter) DO UPDATE SET limit_value=excluded.limit_value"},
    {&WriteStatements::clear_limit, "DELETE FROM tenant_limits WHERE tenant_id=? AND meter=?"},
    {&WriteStatements::counter,
     "INSERT INTO counters(tenant_id,meter,period_start,value) VALUES(?,?,?,?) "
     "ON CONFLICT(tenant_id,meter,period_start) DO UPDATE SET value=value+excluded.value"},
    {&WriteStatements::counter_set,
     "INSERT INTO counters(tenant_id,meter,period_start,value) VALUES(?,?,?,?) "
     "ON CONFLICT(tenant_id,meter,period_start) DO UPDATE SET value=excluded.value"},
    {&WriteStatements::close_move,
     "INSERT INTO usage_aggregates(tenant_id,meter,period_start,period_end,value,limit_value,plan,"
     "closed_at) SELECT tenant_id,meter,period_start,?,value,NULL,?,? FROM counters "
     "WHERE tenant_id=? AND period_start=? "
     "ON CONFLICT(tenant_id,meter,period_start) DO UPDATE SET value=value+excluded.value"},
    {&WriteStatements::close_limit,
     "UPDATE usage_aggregates SET limit_value=? WHERE tenant_id=? AND meter=? AND period_start=?"},
    {&WriteStatements::close_delete, "DELETE FROM counters WHERE tenant_id=? AND period_start=?"},
    {&WriteStatements::hourly,
     "INSERT INTO usage_hourly(tenant_id,meter,channel,hour,value) VALUES(?,?,?,?,?) "
     "ON CONFLICT(tenant_id,meter,hour,channel) DO UPDATE SET value=value+excluded.value"},
    {&WriteStatements::daily,
     "INSERT INTO usage_daily(tenant_id,day,meter,channel,value) VALUES(?,?,?,?,?) "
     "ON CONFLICT(tenant_id,day,meter,channel) DO UPDATE SET value=value+excluded.value"},
    {&WriteStatements::counter_take,
     "UPDATE counters SET value=max(value-?,0) WHERE tenant_id=? AND meter=? AND period_start=?"},
    {&WriteStatements::hourly_take,
     "UPDATE usage_hourly SET value=max(value-?,0) "
     "WHERE tenant_id=? AND meter=? AND channel=? AND hour=?"},
    {&WriteStatements::daily_take,
     "UPDATE usage_daily SET value=max(value-?,0) "
     "WHERE tenant_id=? AND day=? AND meter=? AND channel=?"},
    {&WriteStatements::idem,
     "INSERT OR REPLACE INTO idempotency(tenant_id,key,fingerprint,created_at,allowed,requested,"
     "consumed,remaining,limit_value,overage,period_start,reset_at,meter,reason,extra) "
     "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
    {&WriteStatements::session,
     "INSERT OR REPLACE INTO sessions(tenant_id,id,phone,status,created_at,updated_at,"
     "first_working_at,last_heartbeat,warmup_day,warmup_count,tier_level,tier_since_ms,"
     "tier_qualified_ms) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)"},
    {&WriteStatements::delete_session, "DELETE FROM sessions WHERE tenant_id=? AND id=?"},
    {&WriteStatements::group,
     "INSERT INTO groups_monitored(tenant_id,id,name,created_at) VALUES(?,?,?,?)"},
    {&WriteStatements::delete_group, "DELETE FROM groups_monitored WHERE tenant_id=? AND id=?"},
    {&WriteStatements::key_limits,
     "INSERT OR REPLACE INTO key_rate_limits(key_id,general,messages,sessions) VALUES(?,?,?,?)"},
    {&WriteStatements::gauge, "INSERT OR REPLACE INTO gauges(tenant_id,meter,value) VALUES(?,?,?)"},
    {&WriteStatements::event,
     "INSERT OR IGNORE INTO outbox(id,tenant_id,type,subject,detail,fields,at) "
     "VALUES(?,?,?,?,?,?,?)"},
    {&WriteStatements::alert,
     "INSERT OR IGNORE INTO alerts(tenant_id,meter,period_start,threshold,period_end,value,"
     "limit_value,at) VALUES(?,?,?,?,?,?,?,?)"},
    {&WriteStatements::resolve_alert,
     "UPDATE alerts SET resolved_at=? WHERE tenant_id=? AND meter=? AND period_start=? AND "
     "threshold=? AND resolved_at IS NULL"},
    {&WriteStatements::applied, "INSERT OR IGNORE INTO applied_entries(id,applied_at) VALUES(?,?)"},
    {&WriteStatements::forget_applied, "DELETE FROM applied_entries WHERE applied_at<?"},
    {&WriteStatements::fail_open,
     "INSERT INTO fail_open_charges(id,tenant_id,meter,channel,period_start,period_end,at,now,"
     "units,api_call) VALUES(?,?,?,?,?,?,?,?,?,?)"},
    {&WriteStatements::reconciled, "DELETE FROM fail_open_charges WHERE id=?"},
    {&WriteStatements::plan_change,
     "INSERT INTO subscription_changes(id,tenant_id,actor,from_plan,to_plan,kind,amount_cents,"
     "requested_at,effective_at,state) VALUES(?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
     "amount_cents=excluded.amount_cents,effective_at=excluded.effective_at,"
     "state=excluded.state"},
    {&WriteStatements::set_plan, "UPDATE tenants SET plan=? WHERE id=?"},
    {&WriteStatements::addon,
     "INSERT INTO addons(id,tenant_id,meter,units,price_cents,started_at,ends_at) "
     "VALUES(?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET ends_at=excluded.ends_at"},
    {&WriteStatements::reservation,
     "INSERT OR REPLACE INTO reservations(tenant_id,id,meter,units,created_at_ms,expires_at_ms) "
     "VALUES(?,?,?,?,?,?)"},
    {&WriteStatements::topup,
     "INSERT INTO topups(id,tenant_id,meter,units,drawn,price_cents,bought_at_ms,expires_at_ms) "
     "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING"},
    {&WriteStatements::topup_draw,
     "UPDATE topups SET drawn=MIN(units,drawn+?) WHERE tenant_id=? AND id=?"},
    {&WriteStatements::end_reservation, "DELETE FROM reservations WHERE tenant_id=? AND id=?"},
    {&WriteStatements::purge_reservations,
     "DELETE FROM reservations WHERE tenant_id=? AND expires_at_ms<=?"},
    {&WriteStatements::message,
     "INSERT INTO messages(id,tenant_id,channel,recipient,body,status,created_at,session_id,type,"
     "send_at_ms,due_at_ms,seq,reason,release_attempts,released_at_ms,sent_at_ms,updated_at_ms,"
     "paced,delivery_attempts) "
     "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
     "status=excluded.status,reason=excluded.reason,due_at_ms=excluded.due_at_ms,"
     "released_at_ms=excluded.released_at_ms,sent_at_ms=excluded.sent_at_ms,"
     "updated_at_ms=excluded.updated_at_ms "
     "WHERE messages.status IN ('queued','releasing') AND excluded.status<>'queued'"},
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const SqliteOptions& options) {
  std::unique_ptr<SqliteStore> s(new SqliteStore());
  s->path_ = options.path;
  auto w = Db::Open(options.path);
  if (!w.ok()) return w.status();
  s->writer_ = std::move(*w);
  Db& db = *s->writer_;
  RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(
      db.Exec(options.fsync_each_commit ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=ON"));
  // The writer never checkpoints (an inline checkpoint syncs the database file
  // and stalled commits: p99 3.9 ms -> 1.1 ms at half load without it); the
  // checkpointer thread does it in the background.
  RETURN_IF_ERROR(db.Exec("PRAGMA wal_autocheckpoint=0"));
  RETURN_IF_ERROR(db.Exec("PRAGMA journal_size_limit=67108864"));
  RETURN_IF_ERROR(db.Exec(kSchema));
  // Stores made before the column existed gain it (the schema's CREATE
  // TABLE IF NOT EXISTS leaves their table as it was).
  if (absl::Status s = db.Exec("ALTER TABLE idempotency ADD COLUMN extra TEXT");
      !s.ok() && !absl::StrContains(s.message(), "duplicate column")) {
    return s;
  }
  for (const char* column : kMessageQueueColumns) {
    if (absl::Status s = db.Exec(absl::StrCat("ALTER TABLE messages ADD COLUMN ", column));
        !s.ok() && !absl::StrContains(s.message(), "duplicate column")) {
      return s;
    }
  }
  for (const char* column : kSessionTierColumns) {
    if (absl::Status s = db.Exec(absl::StrCat("ALTER TABLE sessions ADD COLUMN ", column));
        !s.ok() && !absl::StrContains(s.message(), "duplicate column")) {
      return s;
    }
  }
  RETURN_IF_ERROR(db.Exec(kMessageQueueIndexes));

  auto ws = std::make_unique<WriteStatements>();
  for (const StatementSql& p : kWriteSql) {
    auto st = db.Prepare(p.sql);
    if (!st.ok()) return st.status();
    (*ws).*p.stmt = std::move(*st);
  }
  s->w_ = std::move(ws);

  auto cp = Db::Open(options.path);
  if (!cp.ok()) return cp.status();
  s->checkpointer_ = std::move(*cp);
  // A fresh connection learns the journal mode only when it first reads the
  // file; until then its checkpoints are no-ops (log size -1).
  RETURN_IF_ERROR(s->checkpointer_->Exec("PRAGMA journal_mode=WAL"));
  s->checkpoint_thread_ = std::thread([raw = s.get()] {
    pthread_setname_np(pthread_self(), "quotum-ckpt");
    raw->RunCheckpoints();
  });

  auto r = Db::Open(options.path);
  if (!r.ok()) return r.status();
  MutexLock lock(&s->read_mu_);
  s->reader_ = std::move(*r);
  return s;
}

namespace {

// An idempotency row as Load's query selects it (tenant_id, key,
// fingerprint, created_at, then the decision's fields).
engine::IdempotencyRecord IdempotencyRecordFrom(const Stmt& row) {
  engine::IdempotencyRecord rec;
  rec.tenant_id = row.Text(0);
  rec.key = row.Text(1);
  rec.fingerprint = AsUnsigned(row.Int(2));
  rec.created_at = FromSecs(row.Int(3));
  rec.decision.allowed = row.Int(4) != 0;
  rec.decision.requested = AsUnsigned(row.Int(5));
  rec.decision.consumed = AsUnsigned(row.Int(6));
  rec.decision.remaining = AsUnsigned(row.Int(7));
  if (!row.IsNull(8)) rec.decision.limit = AsUnsigned(row.Int(8));
  rec.decision.overage = AsUnsigned(row.Int(9));
  rec.decision.period_start = FromSecs(row.Int(10));
  rec.decision.reset_at = FromSecs(row.Int(11));
  // Only a late event's period had ended when it was decided.
  rec.decision.late = rec.decision.reset_at <= rec.created_at;
  rec.decision.meter = row.Text(12);
  rec.decision.reason = static_cast<engine::DenyReason>(row.Int(13));
  if (!row.IsNull(14)) engine::DecodeDecisionExtras(row.Text(14), rec.decision);
  return rec;
}

}  // namespace

namespace {

// Runs `sql` on `db` (with `param` bound to ?1 if given) and calls `row` for each row.
absl::Status EachRow(Db& db, const char* sql, absl::FunctionRef<void(const Stmt&)> row,
                     std::optional<int64_t> param = std::nullopt) {
  auto st = db.Prepare(sql);
  if (!st.ok()) return st.status();
  if (param) st->Bind(1, *param);
  return st->ForEachRow(row);
}

// Load's first stream: the row counts, then the tenants.
absl::Status StreamTenants(Db& db, engine::SnapshotSink& sink) {
  size_t tenants = 0, keys = 0;
  RETURN_IF_ERROR(EachRow(db, "SELECT COUNT(*) FROM tenants",
                          [&](const Stmt& r) { tenants = static_cast<size_t>(r.Int(0)); }));
  RETURN_IF_ERROR(EachRow(db, "SELECT COUNT(*) FROM api_keys",
                          [&](const Stmt& r) { keys = static_cast<size_t>(r.Int(0)); }));
  sink.Sizes(tenants, keys);
  absl::Status refused;
  RETURN_IF_ERROR(
      EachRow(db, "SELECT id,name,plan,subscription_start,created_at FROM tenants ORDER BY rowid",
              [&](const Stmt& r) {
                if (!refused.ok()) return;
                engine::TenantRecord rec{r.Text(0), r.Text(1), r.Text(2), FromSecs(r.Int(3)),
                                         FromSecs(r.Int(4))};
                refused = sink.Tenant(rec);
              }));
  return refused;
}

// Load's usage group: overrides, counters, idempotency records, groups,
// gauges, reservations.
absl::Status StreamUsage(Db& db, absl::Time idempotency_since, engine::SnapshotSink& sink) {
  RETURN_IF_ERROR(
      EachRow(db, "SELECT tenant_id,meter,limit_value FROM tenant_limits", [&](const Stmt& r) {
        engine::LimitOverride rec{r.Text(0), r.Text(1), AsUnsigned(r.Int(2))};
        sink.Override(rec);
      }));
  // Every period's row, in key order (a tenant's rows together); the sink
  // keeps the current period's. Picking the latest with GROUP BY and MAX in
  // SQL doubled the time of this scan (1 M tenants: 2.6 s).
  RETURN_IF_ERROR(
      EachRow(db, "SELECT tenant_id,meter,period_start,value FROM counters", [&](const Stmt& r) {
        engine::CounterRow rec{r.Text(0), r.Text(1), FromSecs(r.Int(2)), AsUnsigned(r.Int(3))};
        sink.Counter(rec);
      }));
  RETURN_IF_ERROR(EachRow(
      db,
      "SELECT tenant_id,key,fingerprint,created_at,allowed,requested,consumed,remaining,"
      "limit_value,overage,period_start,reset_at,meter,reason,extra FROM idempotency WHERE "
      "created_at>=?",
      [&](const Stmt& row) {
        engine::IdempotencyRecord rec = IdempotencyRecordFrom(row);
        sink.Idempotency(rec);
      },
      Secs(idempotency_since)));
  RETURN_IF_ERROR(
      EachRow(db, "SELECT tenant_id,id,name,created_at FROM groups_monitored", [&](const Stmt& r) {
        engine::GroupRecord rec{r.Text(0), r.Text(1), r.Text(2), FromSecs(r.Int(3))};
        sink.Group(rec);
      }));
  RETURN_IF_ERROR(EachRow(db, "SELECT tenant_id,meter,value FROM gauges", [&](const Stmt& r) {
    engine::GaugeRecord rec{r.Text(0), r.Text(1), AsUnsigned(r.Int(2))};
    sink.Gauge(rec);
  }));
  return EachRow(db, kSelectReservations, [&](const Stmt& r) {
    engine::ReservationRecord rec = ReservationFromRow(r);
    sink.Reservation(rec);
  });
}

// Load's keys-and-sessions group: keys, sessions, key rate limits.
absl::Status StreamKeysAndSessions(Db& db, engine::SnapshotSink& sink) {
  RETURN_IF_ERROR(EachRow(
      db, "SELECT key_id,tenant_id,hash,created_at,revoked_at FROM api_keys", [&](const Stmt& r) {
        engine::ApiKeyRecord rec{r.Text(0), r.Text(1), r.Blob(2), FromSecs(r.Int(3)), !r.IsNull(4)};
        sink.Key(rec);
      }));
  RETURN_IF_ERROR(EachRow(db, absl::StrCat(store::kSessionColumns, " FROM sessions").c_str(),
                          [&](const Stmt& r) {
                            engine::SessionRecord rec = store::SessionOfRow(r);
                            sink.Session(rec);
                          }));
  return EachRow(db, "SELECT key_id,general,messages,sessions FROM key_rate_limits",
                 [&](const Stmt& r) {
                   engine::KeyRateLimitsRecord rec{r.Text(0), {}};
                   if (!r.IsNull(1)) rec.limits.general = static_cast<uint32_t>(r.Int(1));
                   if (!r.IsNull(2)) rec.limits.messages = static_cast<uint32_t>(r.Int(2));
                   if (!r.IsNull(3)) rec.limits.sessions = static_cast<uint32_t>(r.Int(3));
                   sink.KeyRateLimits(rec);
                 });
}

}  // namespace

absl::Status SqliteStore::Load(absl::Time idempotency_since, engine::SnapshotSink& sink) {
  MutexLock lock(&read_mu_);
  Db& db = *reader_;
  RETURN_IF_ERROR(StreamTenants(db, sink));
  sink.TenantsLoaded();
  // The two groups run side by side, the second on a connection of its own
  // (1 M tenants: each group is about half of what follows the tenants).
  auto second = Db::Open(path_);
  if (!second.ok()) return second.status();
  absl::Status keys;
  std::thread keys_thread([&] {
    pthread_setname_np(pthread_self(), "quotum-load");
    keys = StreamKeysAndSessions(**second, sink);
  });
  absl::Status usage = StreamUsage(db, idempotency_since, sink);
  keys_thread.join();
  RETURN_IF_ERROR(usage);
  RETURN_IF_ERROR(keys);
  auto purge = db.Prepare("DELETE FROM idempotency WHERE created_at<?");
  if (!purge.ok()) return purge.status();
  purge->Bind(1, Secs(idempotency_since));
  return purge->Run();
}

absl::Status SqliteStore::Commit(const CommitBatch& batch) {
  RETURN_IF_ERROR(w_->begin.Run());
  absl::Status s = WriteBatch(batch);
  if (s.ok()) s = w_->commit.Run();
  if (!s.ok()) {
    w_->rollback.Run().IgnoreError();
    return s;
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteAppliedEntries(const CommitBatch& b) {
  if (b.applied_entries.empty()) return absl::OkStatus();
  WriteStatements& w = *w_;
  const int64_t now = Secs(absl::Now());
  for (const std::string& id : b.applied_entries) {
    RETURN_IF_ERROR(w.applied.Bind(1, id).Bind(2, now).Run());
    if (sqlite3_changes(writer_->raw()) == 0) {
      return absl::AlreadyExistsError("an entry of this batch was applied before");
    }
  }
  return w.forget_applied.Bind(1, now - absl::ToInt64Seconds(engine::kAppliedEntryRetention)).Run();
}

absl::Status SqliteStore::WriteFailOpen(const CommitBatch& b) {
  WriteStatements& w = *w_;
  for (const engine::FailOpenCharge& f : b.fail_open) {
    RETURN_IF_ERROR(w.fail_open.Bind(1, f.id)
                        .Bind(2, f.tenant_id)
                        .Bind(3, f.meter)
                        .Bind(4, f.channel)
                        .Bind(5, Secs(f.period_start))
                        .Bind(6, Secs(f.period_end))
                        .Bind(7, Secs(f.at))
                        .Bind(8, Secs(f.now))
                        .Bind(9, AsStored(f.units))
                        .Bind(10, int64_t{f.api_call})
                        .Run());
  }
  for (const std::string& id : b.reconciled_fail_open) {
    RETURN_IF_ERROR(w.reconciled.Bind(1, id).Run());
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WritePlanChanges(const CommitBatch& b) {
  WriteStatements& w = *w_;
  for (const engine::SubscriptionChange& c : b.subscription_changes) {
    RETURN_IF_ERROR(w.plan_change.Bind(1, c.id)
                        .Bind(2, c.tenant_id)
                        .Bind(3, c.actor)
                        .Bind(4, c.from_plan)
                        .Bind(5, c.to_plan)
                        .Bind(6, c.kind)
                        .Bind(7, c.amount_cents)
                        .Bind(8, Secs(c.requested_at))
                        .Bind(9, Secs(c.effective_at))
                        .Bind(10, c.state)
                        .Run());
    if (c.state == "applied")
      RETURN_IF_ERROR(w.set_plan.Bind(1, c.to_plan).Bind(2, c.tenant_id).Run());
  }
  RETURN_IF_ERROR(WriteReservations(b));
  RETURN_IF_ERROR(WriteTopups(b));
  for (const engine::AddonRecord& a : b.addons) {
    std::optional<int64_t> ends;
    if (a.ends_at) ends = Secs(*a.ends_at);
    RETURN_IF_ERROR(w.addon.Bind(1, a.id)
                        .Bind(2, a.tenant_id)
                        .Bind(3, a.meter)
                        .Bind(4, AsStored(a.units))
                        .Bind(5, a.price_cents)
                        .Bind(6, Secs(a.started_at))
                        .Bind(7, ends)
                        .Run());
  }
  return absl::OkStatus();
}

namespace {
/// An expiry in Unix ms; nullopt (NULL) for a top-up that never lapses.
std::optional<int64_t> ExpiryMillis(absl::Time t) {
  if (t == absl::InfiniteFuture()) return std::nullopt;
  return absl::ToUnixMillis(t);
}
}  // namespace

// Bought top-ups first, then what decisions drew of them.
absl::Status SqliteStore::WriteTopups(const CommitBatch& b) {
  WriteStatements& w = *w_;
  for (const engine::TopupRecord& t : b.topups) {
    RETURN_IF_ERROR(w.topup.Bind(1, t.id)
                        .Bind(2, t.tenant_id)
                        .Bind(3, t.meter)
                        .Bind(4, AsStored(t.units))
                        .Bind(5, AsStored(t.drawn))
                        .Bind(6, t.price_cents)
                        .Bind(7, absl::ToUnixMillis(t.bought_at))
                        .Bind(8, ExpiryMillis(t.expires_at))
                        .Run());
  }
  for (const engine::TopupDraw& d : b.topup_draws) {
    RETURN_IF_ERROR(
        w.topup_draw.Bind(1, AsStored(d.units)).Bind(2, d.tenant_id).Bind(3, d.id).Run());
  }
  return absl::OkStatus();
}

// New reservations first, then the ended ones: a reservation made and ended
// in one batch is gone after it.
absl::Status SqliteStore::WriteReservations(const CommitBatch& b) {
  WriteStatements& w = *w_;
  for (const engine::ReservationRecord& r : b.reservations) {
    RETURN_IF_ERROR(
        w.purge_reservations.Bind(1, r.tenant_id).Bind(2, absl::ToUnixMillis(r.created_at)).Run());
    RETURN_IF_ERROR(w.reservation.Bind(1, r.tenant_id)
                        .Bind(2, r.id)
                        .Bind(3, r.meter)
                        .Bind(4, AsStored(r.units))
                        .Bind(5, absl::ToUnixMillis(r.created_at))
                        .Bind(6, absl::ToUnixMillis(r.expires_at))
                        .Run());
  }
  for (const auto& [tenant, id] : b.ended_reservations) {
    RETURN_IF_ERROR(w.end_reservation.Bind(1, tenant).Bind(2, id).Run());
  }
  return absl::OkStatus();
}

// Absolute counter values first (the reconciliation's repair), then the
// batch's usage added to the counters and the hour and day buckets.
absl::Status SqliteStore::WriteUsage(const CommitBatch& b) {
  WriteStatements& w = *w_;
  for (const engine::CounterRow& r : b.counter_sets) {
    RETURN_IF_ERROR(w.counter_set.Bind(1, r.tenant_id)
                        .Bind(2, r.meter)
                        .Bind(3, Secs(r.period_start))
                        .Bind(4, AsStored(r.value))
                        .Run());
  }
  // Sum the batch's deltas per row first: a hot tenant's hundred requests
  // become one upsert per table. Ordered by tenant first, as every usage
  // table's key is: a large batch (a replay, a fold behind many tenants)
  // then visits each tenant's rows once, in the tables' order, not at random
  // (a 100,000-row replay over 1 M tenants: 10.5 s -> 4 s). Keys view the
  // batch's strings (no copies); days are kept as day numbers and formatted
  // once per row.
  using Text = absl::string_view;
  using CounterKey = std::tuple<Text, Text, int64_t>;
  using BucketKey = std::tuple<Text, Text, Text, int64_t>;
  absl::btree_map<CounterKey, uint64_t> counters;
  absl::btree_map<BucketKey, uint64_t> hours;
  absl::btree_map<BucketKey, uint64_t> days;
  for (const auto& u : b.usage) {
    const int64_t at = HourOf(u.at);
    counters[{u.tenant_id, u.meter, Secs(u.period_start)}] += u.quantity;
    hours[{u.tenant_id, u.meter, u.channel, at}] += u.quantity;
    days[{u.tenant_id, u.meter, u.channel, FloorTo(at, 86400)}] += u.quantity;
  }
  for (const auto& [k, v] : counters) {
    RETURN_IF_ERROR(w.counter.Bind(1, std::get<0>(k))
                        .Bind(2, std::get<1>(k))
                        .Bind(3, std::get<2>(k))
                        .Bind(4, AsStored(v))
                        .Run());
  }
  for (const auto& [k, v] : hours) {
    RETURN_IF_ERROR(w.hourly.Bind(1, std::get<0>(k))
                        .Bind(2, std::get<1>(k))
                        .Bind(3, std::get<2>(k))
                        .Bind(4, std::get<3>(k))
                        .Bind(5, AsStored(v))
                        .Run());
  }
  for (const auto& [k, v] : days) {
    RETURN_IF_ERROR(w.daily.Bind(1, std::get<0>(k))
                        .Bind(2, DayOf(absl::FromUnixSeconds(std::get<3>(k))))
                        .Bind(3, std::get<1>(k))
                        .Bind(4, std::get<2>(k))
                        .Bind(5, AsStored(v))
                        .Run());
  }
  RETURN_IF_ERROR(WriteGivenBack(b));
  return WritePeriodCloses(b);
}

absl::Status SqliteStore::WriteGivenBack(const CommitBatch& b) {
  WriteStatements& w = *w_;
  for (const auto& u : b.given_back) {
    const int64_t hour = HourOf(u.at);
    const int64_t units = AsStored(u.quantity);
    RETURN_IF_ERROR(w.counter_take.Bind(1, units)
                        .Bind(2, u.tenant_id)
                        .Bind(3, u.meter)
                        .Bind(4, Secs(u.period_start))
                        .Run());
    RETURN_IF_ERROR(w.hourly_take.Bind(1, units)
                        .Bind(2, u.tenant_id)
                        .Bind(3, u.meter)
                        .Bind(4, u.channel)
                        .Bind(5, hour)
                        .Run());
    RETURN_IF_ERROR(w.daily_take.Bind(1, units)
                        .Bind(2, u.tenant_id)
                        .Bind(3, DayOf(absl::FromUnixSeconds(FloorTo(hour, 86400))))
                        .Bind(4, u.meter)
                        .Bind(5, u.channel)
                        .Run());
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WritePeriodCloses(const CommitBatch& b) {
  WriteStatements& w = *w_;
  for (const engine::PeriodClose& c : b.period_closes) {
    const int64_t start = Secs(c.period.start);
    RETURN_IF_ERROR(w.close_move.Bind(1, Secs(c.period.end))
                        .Bind(2, c.plan)
                        .Bind(3, Secs(c.closed_at))
                        .Bind(4, c.tenant_id)
                        .Bind(5, start)
                        .Run());
    for (const auto& [meter, limit] : c.limits) {
      RETURN_IF_ERROR(w.close_limit.Bind(1, AsStored(limit))
                          .Bind(2, c.tenant_id)
                          .Bind(3, meter)
                          .Bind(4, start)
                          .Run());
    }
    RETURN_IF_ERROR(w.close_delete.Bind(1, c.tenant_id).Bind(2, start).Run());
  }
  return absl::OkStatus();
}

// Tenants, keys, revocations and limit overrides.
absl::Status SqliteStore::WriteTenantsAndKeys(const CommitBatch& b) {
  WriteStatements& w = *w_;
  for (const auto& t : b.tenants) {
    RETURN_IF_ERROR(w.tenant.Bind(1, t.id)
                        .Bind(2, t.name)
                        .Bind(3, t.plan)
                        .Bind(4, Secs(t.subscription_start))
                        .Bind(5, Secs(t.created_at))
                        .Run());
  }
  for (const auto& k : b.keys) {
    RETURN_IF_ERROR(w.key.Bind(1, k.key_id)
                        .Bind(2, k.tenant_id)
                        .BindBlob(3, k.hash)
                        .Bind(4, Secs(k.created_at))
                        .Run());
  }
  for (const auto& id : b.revoked_key_ids) {
    RETURN_IF_ERROR(w.revoke.Bind(1, Secs(absl::Now())).Bind(2, id).Run());
  }
  for (const auto& o : b.overrides) {
    if (o.limit) {
      RETURN_IF_ERROR(
          w.set_limit.Bind(1, o.tenant_id).Bind(2, o.meter).Bind(3, AsStored(*o.limit)).Run());
    } else {
      RETURN_IF_ERROR(w.clear_limit.Bind(1, o.tenant_id).Bind(2, o.meter).Run());
    }
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteIdempotencyAndMessages(const CommitBatch& b) {
  WriteStatements& w = *w_;
  for (const auto& r : b.idempotency) {
    const auto& d = r.decision;
    w.idem.Bind(1, r.tenant_id)
        .Bind(2, r.key)
        .Bind(3, AsStored(r.fingerprint))
        .Bind(4, Secs(r.created_at))
        .Bind(5, int64_t{d.allowed})
        .Bind(6, AsStored(d.requested))
        .Bind(7, AsStored(d.consumed))
        .Bind(8, AsStored(d.remaining))
        .Bind(9, d.limit ? std::optional<int64_t>(AsStored(*d.limit)) : std::nullopt)
        .Bind(10, AsStored(d.overage))
        .Bind(11, Secs(d.period_start))
        .Bind(12, Secs(d.reset_at))
        .Bind(13, d.meter)
        .Bind(14, static_cast<int64_t>(d.reason));
    const std::string extra = engine::EncodeDecisionExtras(d);
    if (extra.empty()) {
      w.idem.BindNull(15);
    } else {
      w.idem.Bind(15, extra);
    }
    RETURN_IF_ERROR(w.idem.Run());
  }
  for (const auto& m : b.messages) {
    RETURN_IF_ERROR(w.message.Bind(1, m.id)
                        .Bind(2, m.tenant_id)
                        .Bind(3, m.channel)
                        .Bind(4, m.to)
                        .Bind(5, m.text)
                        .Bind(6, m.status)
                        .Bind(7, Secs(m.created_at))
                        .Bind(8, m.session_id)
                        .Bind(9, m.type)
                        .Bind(10, OptMillis(m.send_at))
                        .Bind(11, OptMillis(m.due_at))
                        .Bind(12, static_cast<int64_t>(m.seq))
                        .Bind(13, m.reason)
                        .Bind(14, static_cast<int64_t>(m.release_attempts))
                        .Bind(15, OptMillis(m.released_at))
                        .Bind(16, OptMillis(m.sent_at))
                        .Bind(17, absl::ToUnixMillis(m.updated_at))
                        .Bind(18, int64_t{m.paced ? 1 : 0})
                        .Bind(19, static_cast<int64_t>(m.delivery_attempts))
                        .Run());
  }
  return WriteMessageTransitions(b);
}

// Sessions, groups, key rate limits and gauges.
absl::Status SqliteStore::WriteLeasesAndLimits(const CommitBatch& b) {
  WriteStatements& w = *w_;
  for (const auto& s : b.sessions) {
    std::optional<int64_t> first;
    if (s.first_working_at) first = Secs(*s.first_working_at);
    RETURN_IF_ERROR(w.session.Bind(1, s.tenant_id)
                        .Bind(2, s.id)
                        .Bind(3, s.phone)
                        .Bind(4, s.status)
                        .Bind(5, Secs(s.created_at))
                        .Bind(6, Secs(s.updated_at))
                        .Bind(7, first)
                        .Bind(8, Secs(s.last_heartbeat))
                        .Bind(9, s.warmup_day)
                        .Bind(10, AsStored(s.warmup_count))
                        .Bind(11, s.tier_level)
                        .Bind(12, s.tier_since_ms)
                        .Bind(13, s.tier_qualified_ms)
                        .Run());
  }
  for (const auto& [tenant, id] : b.deleted_sessions) {
    RETURN_IF_ERROR(w.delete_session.Bind(1, tenant).Bind(2, id).Run());
  }
  for (const auto& g : b.groups) {
    RETURN_IF_ERROR(w.group.Bind(1, g.tenant_id)
                        .Bind(2, g.id)
                        .Bind(3, g.name)
                        .Bind(4, Secs(g.created_at))
                        .Run());
  }
  for (const auto& [tenant, id] : b.deleted_groups) {
    RETURN_IF_ERROR(w.delete_group.Bind(1, tenant).Bind(2, id).Run());
  }
  auto opt = [](std::optional<uint32_t> v) -> std::optional<int64_t> {
    if (!v) return std::nullopt;
    return static_cast<int64_t>(*v);
  };
  for (const auto& k : b.key_rate_limits) {
    RETURN_IF_ERROR(w.key_limits.Bind(1, k.key_id)
                        .Bind(2, opt(k.limits.general))
                        .Bind(3, opt(k.limits.messages))
                        .Bind(4, opt(k.limits.sessions))
                        .Run());
  }
  for (const auto& g : b.gauges) {
    RETURN_IF_ERROR(w.gauge.Bind(1, g.tenant_id).Bind(2, g.meter).Bind(3, AsStored(g.value)).Run());
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteBatch(const CommitBatch& b) {
  RETURN_IF_ERROR(WriteAppliedEntries(b));
  RETURN_IF_ERROR(WriteFailOpen(b));
  RETURN_IF_ERROR(WritePlanChanges(b));
  RETURN_IF_ERROR(WriteTenantsAndKeys(b));
  RETURN_IF_ERROR(WriteUsage(b));
  RETURN_IF_ERROR(WriteIdempotencyAndMessages(b));
  RETURN_IF_ERROR(WriteLeasesAndLimits(b));
  RETURN_IF_ERROR(WriteAlertsAndEvents(b));
  for (const engine::JournalMark& m : b.journal_marks) {
    RETURN_IF_ERROR(w_->journal_mark.Bind(1, int64_t{m.journal}).Bind(2, AsStored(m.seq)).Run());
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteAlertsAndEvents(const CommitBatch& b) {
  WriteStatements& w = *w_;
  for (const engine::AlertRecord& a : b.alerts) {
    RETURN_IF_ERROR(w.alert.Bind(1, a.tenant_id)
                        .Bind(2, a.meter)
                        .Bind(3, Secs(a.period_start))
                        .Bind(4, int64_t{a.threshold})
                        .Bind(5, Secs(a.period_end))
                        .Bind(6, AsStored(a.value))
                        .Bind(7, AsStored(a.limit))
                        .Bind(8, Secs(a.at))
                        .Run());
  }
  for (const engine::AlertRecord& a : b.resolved_alerts) {
    RETURN_IF_ERROR(w.resolve_alert.Bind(1, Secs(a.resolved_at.value_or(a.at)))
                        .Bind(2, a.tenant_id)
                        .Bind(3, a.meter)
                        .Bind(4, Secs(a.period_start))
                        .Bind(5, int64_t{a.threshold})
                        .Run());
  }
  for (const auto& e : b.events) {
    RETURN_IF_ERROR(w.event.Bind(1, e.id.empty() ? "evt_" + engine::RandomHex(12) : e.id)
                        .Bind(2, e.tenant_id)
                        .Bind(3, e.type)
                        .Bind(4, e.subject)
                        .Bind(5, e.detail)
                        .Bind(6, engine::EncodeEventFields(e.fields))
                        .Bind(7, Secs(e.at))
                        .Run());
  }
  return WriteOutbox(b);
}

absl::StatusOr<std::vector<engine::DailyRow>> SqliteStore::Daily(const std::string& tenant_id,
                                                                 absl::CivilDay from,
                                                                 absl::CivilDay to) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT day,meter,SUM(value) FROM usage_daily WHERE tenant_id=? AND day>=? AND day<=? "
      "GROUP BY day,meter");
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id).Bind(2, FormatDate(from)).Bind(3, FormatDate(to));
  std::vector<engine::DailyRow> out;
  absl::Status s = st->ForEachRow([&](const Stmt& r) {
    absl::CivilDay d;
    if (!absl::ParseCivilTime(r.Text(0), &d)) return;
    out.push_back({d, r.Text(1), AsUnsigned(r.Int(2))});
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<engine::HourlyRow>> SqliteStore::Hourly(const std::string& tenant_id,
                                                                   absl::Time from, absl::Time to) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT hour,meter,channel,SUM(value) FROM usage_hourly WHERE tenant_id=? AND hour>=? "
      "AND hour<? GROUP BY hour,meter,channel ORDER BY hour,meter,channel");
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id).Bind(2, Secs(from)).Bind(3, Secs(to));
  std::vector<engine::HourlyRow> out;
  absl::Status s = st->ForEachRow([&](const Stmt& r) {
    out.push_back({FromSecs(r.Int(0)), r.Text(1), r.Text(2), AsUnsigned(r.Int(3))});
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<engine::DailyChannelRow>> SqliteStore::DailyByChannel(
    const std::string& tenant_id, absl::CivilDay from, absl::CivilDay to) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT day,meter,channel,value FROM usage_daily WHERE tenant_id=? AND day>=? AND day<=? "
      "ORDER BY day,meter,channel");
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id).Bind(2, FormatDate(from)).Bind(3, FormatDate(to));
  std::vector<engine::DailyChannelRow> out;
  absl::Status s = st->ForEachRow([&](const Stmt& r) {
    absl::CivilDay d;
    if (!absl::ParseCivilTime(r.Text(0), &d)) return;
    out.push_back({d, r.Text(1), r.Text(2), AsUnsigned(r.Int(3))});
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<engine::CounterRow>> SqliteStore::Periods(const std::string& tenant_id,
                                                                     absl::Time since) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT meter,period_start,SUM(value) FROM (SELECT meter,period_start,value FROM counters "
      "WHERE tenant_id=?1 AND period_start>=?2 UNION ALL SELECT meter,period_start,value FROM "
      "usage_aggregates WHERE tenant_id=?1 AND period_start>=?2) GROUP BY meter,period_start");
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id).Bind(2, Secs(since));
  std::vector<engine::CounterRow> out;
  absl::Status s = st->ForEachRow([&](const Stmt& r) {
    out.push_back({tenant_id, r.Text(0), FromSecs(r.Int(1)), AsUnsigned(r.Int(2))});
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> SqliteStore::Channels(
    const std::string& tenant_id, const std::string& meter, absl::Time from, absl::Time to) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT channel,SUM(value) FROM usage_hourly WHERE tenant_id=? AND meter=? AND hour>=? "
      "AND hour<? GROUP BY channel ORDER BY channel");
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id).Bind(2, meter).Bind(3, HourOf(from)).Bind(4, Secs(to));
  std::vector<std::pair<std::string, uint64_t>> out;
  absl::Status s =
      st->ForEachRow([&](const Stmt& r) { out.emplace_back(r.Text(0), AsUnsigned(r.Int(1))); });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<engine::EventRecord>> SqliteStore::Events(const std::string& tenant_id,
                                                                     size_t limit) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT tenant_id,type,subject,detail,at,id,fields FROM outbox WHERE tenant_id=? "
      "ORDER BY seq DESC LIMIT ?");
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id).Bind(2, static_cast<int64_t>(limit));
  std::vector<engine::EventRecord> out;
  absl::Status s = st->ForEachRow([&](const Stmt& r) {
    out.push_back(
        {r.Text(0), r.Text(1), r.Text(2), r.Text(3), FromSecs(r.Int(4)), r.Text(5),
         engine::DecodeEventFields(r.Text(6)).value_or(std::vector<engine::EventField>{})});
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<engine::AlertRecord>> SqliteStore::Alerts(const std::string& tenant_id,
                                                                     absl::Time from,
                                                                     absl::Time to) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT meter,period_start,period_end,threshold,value,limit_value,at,resolved_at FROM alerts "
      "WHERE tenant_id=? AND at>=? AND at<? ORDER BY at,meter,threshold");
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id).Bind(2, Secs(from)).Bind(3, Secs(to));
  std::vector<engine::AlertRecord> out;
  absl::Status s = st->ForEachRow([&](const Stmt& r) {
    std::optional<absl::Time> resolved;
    if (!r.IsNull(7)) resolved = FromSecs(r.Int(7));
    out.push_back({tenant_id, r.Text(0), FromSecs(r.Int(1)), FromSecs(r.Int(2)),
                   static_cast<int>(r.Int(3)), AsUnsigned(r.Int(4)), AsUnsigned(r.Int(5)),
                   FromSecs(r.Int(6)), resolved});
  });
  if (!s.ok()) return s;
  return out;
}

namespace {

constexpr char kPlanChangeColumns[] =
    "SELECT id,tenant_id,actor,from_plan,to_plan,kind,amount_cents,requested_at,effective_at,state "
    "FROM subscription_changes ";

engine::SubscriptionChange PlanChangeOf(const Stmt& r) {
  return {r.Text(0), r.Text(1), r.Text(2),          r.Text(3),          r.Text(4),
          r.Text(5), r.Int(6),  FromSecs(r.Int(7)), FromSecs(r.Int(8)), r.Text(9)};
}

}  // namespace

absl::StatusOr<std::vector<engine::SubscriptionChange>> SqliteStore::SubscriptionChanges(
    const std::string& tenant_id) {
  MutexLock lock(&read_mu_);
  auto st =
      reader_->Prepare(std::string(kPlanChangeColumns) + "WHERE tenant_id=? ORDER BY seq DESC");
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id);
  std::vector<engine::SubscriptionChange> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) { out.push_back(PlanChangeOf(r)); }));
  return out;
}

absl::StatusOr<std::vector<engine::AddonRecord>> SqliteStore::Addons(const std::string& tenant_id,
                                                                     absl::Time now) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT id,tenant_id,meter,units,price_cents,started_at,ends_at FROM addons "
      "WHERE (?='' OR tenant_id=?) AND (ends_at IS NULL OR ends_at>?) ORDER BY seq");
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id).Bind(2, tenant_id).Bind(3, Secs(now));
  std::vector<engine::AddonRecord> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) {
    engine::AddonRecord a{r.Text(0), r.Text(1),          r.Text(2),   AsUnsigned(r.Int(3)),
                          r.Int(4),  FromSecs(r.Int(5)), std::nullopt};
    if (!r.IsNull(6)) a.ends_at = FromSecs(r.Int(6));
    out.push_back(std::move(a));
  }));
  return out;
}

absl::StatusOr<std::vector<engine::TopupRecord>> SqliteStore::Topups(const std::string& tenant_id,
                                                                     absl::Time now) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT id,tenant_id,meter,units,drawn,price_cents,bought_at_ms,expires_at_ms FROM topups "
      "WHERE (?='' OR tenant_id=?) AND (expires_at_ms IS NULL OR expires_at_ms>?) "
      "ORDER BY tenant_id, expires_at_ms IS NULL, expires_at_ms, id");
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id).Bind(2, tenant_id).Bind(3, absl::ToUnixMillis(now));
  std::vector<engine::TopupRecord> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) {
    engine::TopupRecord t{r.Text(0),
                          r.Text(1),
                          r.Text(2),
                          AsUnsigned(r.Int(3)),
                          AsUnsigned(r.Int(4)),
                          r.Int(5),
                          absl::FromUnixMillis(r.Int(6))};
    if (!r.IsNull(7)) t.expires_at = absl::FromUnixMillis(r.Int(7));
    out.push_back(std::move(t));
  }));
  return out;
}

absl::StatusOr<std::vector<engine::SubscriptionChange>> SqliteStore::PendingPlanChanges() {
  MutexLock lock(&read_mu_);
  auto st =
      reader_->Prepare(std::string(kPlanChangeColumns) + "WHERE state='pending' ORDER BY seq");
  if (!st.ok()) return st.status();
  std::vector<engine::SubscriptionChange> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) { out.push_back(PlanChangeOf(r)); }));
  return out;
}

absl::StatusOr<engine::TenantLeaseRows> SqliteStore::LeaseRows(const std::string& tenant_id) {
  MutexLock lock(&read_mu_);
  engine::TenantLeaseRows out;
  auto each = [&](const char* sql, absl::FunctionRef<void(const Stmt&)> row) -> absl::Status {
    auto st = reader_->Prepare(sql);
    if (!st.ok()) return st.status();
    st->Bind(1, tenant_id);
    return st->ForEachRow(row);
  };
  RETURN_IF_ERROR(each(
      absl::StrCat(store::kSessionColumns, " FROM sessions WHERE tenant_id=? ORDER BY id").c_str(),
      [&](const Stmt& r) { out.sessions.push_back(store::SessionOfRow(r)); }));
  RETURN_IF_ERROR(each(
      "SELECT tenant_id,id,name,created_at FROM groups_monitored WHERE tenant_id=? ORDER BY id",
      [&](const Stmt& r) {
        out.groups.push_back({r.Text(0), r.Text(1), r.Text(2), FromSecs(r.Int(3))});
      }));
  RETURN_IF_ERROR(each("SELECT tenant_id,meter,value FROM gauges WHERE tenant_id=? ORDER BY meter",
                       [&](const Stmt& r) {
                         out.gauges.push_back({r.Text(0), r.Text(1), AsUnsigned(r.Int(2))});
                       }));
  return out;
}

absl::StatusOr<std::vector<engine::FailOpenCharge>> SqliteStore::PendingFailOpen(size_t max) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT id,tenant_id,meter,channel,period_start,period_end,at,now,units,api_call "
      "FROM fail_open_charges ORDER BY seq LIMIT ?");
  if (!st.ok()) return st.status();
  st->Bind(1, static_cast<int64_t>(std::min<size_t>(max, 1 << 30)));
  std::vector<engine::FailOpenCharge> out;
  absl::Status s = st->ForEachRow([&](const Stmt& r) {
    out.push_back({r.Text(0), r.Text(1), r.Text(2), r.Text(3), FromSecs(r.Int(4)),
                   FromSecs(r.Int(5)), FromSecs(r.Int(6)), FromSecs(r.Int(7)),
                   static_cast<uint64_t>(r.Int(8)), r.Int(9) != 0});
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<std::string>> SqliteStore::TenantIds() {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare("SELECT id FROM tenants ORDER BY id");
  if (!st.ok()) return st.status();
  std::vector<std::string> out;
  absl::Status s = st->ForEachRow([&](const Stmt& r) { out.push_back(r.Text(0)); });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, absl::Time>>> SqliteStore::OpenPeriods(
    absl::Time before) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT DISTINCT tenant_id,period_start FROM counters WHERE period_start<? "
      "ORDER BY tenant_id,period_start");
  if (!st.ok()) return st.status();
  st->Bind(1, Secs(before));
  std::vector<std::pair<std::string, absl::Time>> out;
  absl::Status s =
      st->ForEachRow([&](const Stmt& r) { out.emplace_back(r.Text(0), FromSecs(r.Int(1))); });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<engine::JournalMark>> SqliteStore::JournalMarks() {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare("SELECT journal,seq FROM journal_marks");
  if (!st.ok()) return st.status();
  std::vector<engine::JournalMark> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) {
    out.push_back({static_cast<uint32_t>(r.Int(0)), static_cast<uint64_t>(r.Int(1))});
  }));
  return out;
}

absl::Status SqliteStore::CheckWritable() {
  MutexLock lock(&read_mu_);
  RETURN_IF_ERROR(reader_->Exec("BEGIN IMMEDIATE"));
  return reader_->Exec("ROLLBACK");
}

}  // namespace quotum::store::sqlite
