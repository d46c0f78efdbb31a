// The SQLite store's outbox: webhooks, their deliveries and attempts, and the
// events waiting to be fanned out to them (engine/store.h "The outbox").
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "quotum/base/status_macros.h"
#include "quotum/engine/events.h"
#include "quotum/store/column_values.h"
#include "quotum/store/sqlite/sqlite_store.h"

namespace quotum::store::sqlite {
namespace {

constexpr char kWebhookColumns[] =
    "SELECT id,tenant_id,url,events,secret,created_at,deleted_at FROM webhooks ";
engine::WebhookRecord WebhookOf(const Stmt& r) {
  return {r.Text(0),    r.Text(1),
          r.Text(2),    absl::StrSplit(r.Text(3), ',', absl::SkipEmpty()),
          r.Text(4),    FromSecs(r.Int(5)),
          OptTime(r, 6)};
}

constexpr char kDeliveryColumns[] =
    "SELECT id,webhook_id,tenant_id,event_id,state,attempts,budget_from,next_at_ms,last_status,"
    "last_error,"
    "created_at,finished_at FROM deliveries ";
engine::DeliveryRecord DeliveryOf(const Stmt& r) {
  engine::DeliveryRecord d;
  d.id = r.Text(0);
  d.webhook_id = r.Text(1);
  d.tenant_id = r.Text(2);
  d.event_id = r.Text(3);
  d.state = r.Text(4);
  d.attempts = static_cast<int>(r.Int(5));
  d.budget_from = static_cast<int>(r.Int(6));
  d.next_at = absl::FromUnixMillis(r.Int(7));
  d.last_status = static_cast<int>(r.Int(8));
  d.last_error = r.Text(9);
  d.created_at = FromSecs(r.Int(10));
  d.finished_at = OptTime(r, 11);
  return d;
}

constexpr char kEventColumns[] = "SELECT tenant_id,type,subject,detail,at,id,fields FROM outbox ";
engine::EventRecord EventOf(const Stmt& r) {
  return {r.Text(0),
          r.Text(1),
          r.Text(2),
          r.Text(3),
          FromSecs(r.Int(4)),
          r.Text(5),
          engine::DecodeEventFields(r.Text(6)).value_or(std::vector<engine::EventField>{})};
}

}  // namespace

absl::Status SqliteStore::WriteOutbox(const engine::CommitBatch& b) {
  Db& db = *writer_;
  if (!b.webhooks.empty()) {
    auto st = db.Prepare(
        "INSERT INTO webhooks(id,tenant_id,url,events,secret,created_at,deleted_at) "
        "VALUES(?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET deleted_at=excluded.deleted_at");
    if (!st.ok()) return st.status();
    for (const engine::WebhookRecord& w : b.webhooks) {
      RETURN_IF_ERROR(st->Bind(1, w.id)
                          .Bind(2, w.tenant_id)
                          .Bind(3, w.url)
                          .Bind(4, absl::StrJoin(w.events, ","))
                          .Bind(5, w.secret)
                          .Bind(6, Secs(w.created_at))
                          .Bind(7, OptSecs(w.deleted_at))
                          .Run());
    }
  }
  if (!b.deliveries.empty()) {
    auto st = db.Prepare(
        "INSERT INTO deliveries(id,webhook_id,tenant_id,event_id,state,attempts,budget_from,"
        "next_at_ms,last_status,last_error,created_at,finished_at) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(id) DO UPDATE SET state=excluded.state,attempts=excluded.attempts,"
        "budget_from=excluded.budget_from,next_at_ms=excluded.next_at_ms,"
        "last_status=excluded.last_status,"
        "last_error=excluded.last_error,finished_at=excluded.finished_at "
        "ON CONFLICT(webhook_id,event_id) DO NOTHING");
    if (!st.ok()) return st.status();
    for (const engine::DeliveryRecord& d : b.deliveries) {
      RETURN_IF_ERROR(st->Bind(1, d.id)
                          .Bind(2, d.webhook_id)
                          .Bind(3, d.tenant_id)
                          .Bind(4, d.event_id)
                          .Bind(5, d.state)
                          .Bind(6, int64_t{d.attempts})
                          .Bind(7, int64_t{d.budget_from})
                          .Bind(8, absl::ToUnixMillis(d.next_at))
                          .Bind(9, int64_t{d.last_status})
                          .Bind(10, d.last_error)
                          .Bind(11, Secs(d.created_at))
                          .Bind(12, OptSecs(d.finished_at))
                          .Run());
    }
  }
  return WriteAttemptsAndRelayed(b);
}

absl::Status SqliteStore::WriteAttemptsAndRelayed(const engine::CommitBatch& b) {
  Db& db = *writer_;
  if (!b.attempts.empty()) {
    auto st = db.Prepare(
        "INSERT OR IGNORE INTO delivery_attempts(delivery_id,attempt,at,status,error,took_ms) "
        "VALUES(?,?,?,?,?,?)");
    if (!st.ok()) return st.status();
    for (const engine::AttemptRecord& a : b.attempts) {
      RETURN_IF_ERROR(st->Bind(1, a.delivery_id)
                          .Bind(2, int64_t{a.attempt})
                          .Bind(3, Secs(a.at))
                          .Bind(4, int64_t{a.status})
                          .Bind(5, a.error)
                          .Bind(6, a.took_ms)
                          .Run());
    }
  }
  if (!b.relayed_events.empty()) {
    auto st = db.Prepare("UPDATE outbox SET relayed=1 WHERE id=?");
    if (!st.ok()) return st.status();
    for (const std::string& id : b.relayed_events) RETURN_IF_ERROR(st->Bind(1, id).Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<engine::WebhookRecord>> SqliteStore::Webhooks(
    const std::string& tenant_id) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(std::string(kWebhookColumns) +
                             "WHERE deleted_at IS NULL AND (?1='' OR tenant_id=?1) ORDER BY seq");
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id);
  std::vector<engine::WebhookRecord> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) { out.push_back(WebhookOf(r)); }));
  return out;
}

absl::StatusOr<std::vector<engine::EventRecord>> SqliteStore::UnrelayedEvents(size_t max) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(std::string(kEventColumns) + "WHERE relayed=0 ORDER BY seq LIMIT ?");
  if (!st.ok()) return st.status();
  st->Bind(1, static_cast<int64_t>(max));
  std::vector<engine::EventRecord> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) { out.push_back(EventOf(r)); }));
  return out;
}

absl::StatusOr<std::optional<engine::EventRecord>> SqliteStore::FindEvent(const std::string& id) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(std::string(kEventColumns) + "WHERE id=?");
  if (!st.ok()) return st.status();
  st->Bind(1, id);
  std::optional<engine::EventRecord> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) { out = EventOf(r); }));
  return out;
}

absl::StatusOr<std::vector<engine::DeliveryRecord>> SqliteStore::NextDeliveries(absl::Time now,
                                                                                size_t max) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(std::string(kDeliveryColumns) +
                             "WHERE seq IN (SELECT MIN(seq) FROM deliveries WHERE state='pending' "
                             "GROUP BY webhook_id) AND next_at_ms<=? ORDER BY seq LIMIT ?");
  if (!st.ok()) return st.status();
  st->Bind(1, absl::ToUnixMillis(now)).Bind(2, static_cast<int64_t>(max));
  std::vector<engine::DeliveryRecord> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) { out.push_back(DeliveryOf(r)); }));
  return out;
}

absl::StatusOr<std::vector<engine::DeliveryRecord>> SqliteStore::Deliveries(
    const std::string& webhook_id, size_t limit) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(std::string(kDeliveryColumns) +
                             "WHERE webhook_id=? ORDER BY seq DESC LIMIT ?");
  if (!st.ok()) return st.status();
  st->Bind(1, webhook_id).Bind(2, static_cast<int64_t>(limit));
  std::vector<engine::DeliveryRecord> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) { out.push_back(DeliveryOf(r)); }));
  return out;
}

absl::StatusOr<std::optional<engine::DeliveryRecord>> SqliteStore::FindDelivery(
    const std::string& id) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(std::string(kDeliveryColumns) + "WHERE id=?");
  if (!st.ok()) return st.status();
  st->Bind(1, id);
  std::optional<engine::DeliveryRecord> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) { out = DeliveryOf(r); }));
  return out;
}

absl::StatusOr<std::vector<engine::AttemptRecord>> SqliteStore::Attempts(
    const std::string& delivery_id) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT delivery_id,attempt,at,status,error,took_ms FROM delivery_attempts "
      "WHERE delivery_id=? ORDER BY attempt");
  if (!st.ok()) return st.status();
  st->Bind(1, delivery_id);
  std::vector<engine::AttemptRecord> out;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) {
    out.push_back({r.Text(0), static_cast<int>(r.Int(1)), FromSecs(r.Int(2)),
                   static_cast<int>(r.Int(3)), r.Text(4), r.Int(5)});
  }));
  return out;
}

absl::StatusOr<uint64_t> SqliteStore::OutboxBacklog() {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      "SELECT (SELECT COUNT(*) FROM outbox WHERE relayed=0) + "
      "(SELECT COUNT(*) FROM deliveries WHERE state='pending')");
  if (!st.ok()) return st.status();
  uint64_t n = 0;
  RETURN_IF_ERROR(st->ForEachRow([&](const Stmt& r) { n = static_cast<uint64_t>(r.Int(0)); }));
  return n;
}

}  // namespace quotum::store::sqlite
