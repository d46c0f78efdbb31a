// The PostgreSQL store's outbox reads: webhooks, their deliveries and
// attempts, and the events waiting to be fanned out (engine/store.h "The
// outbox"). Writes go with every other record in Commit (pg_commit.cc).
#include "absl/strings/str_split.h"
#include "quotum/engine/events.h"
#include "quotum/store/column_values.h"
#include "quotum/store/postgres/pg_store.h"

namespace quotum::store::postgres {
namespace {

constexpr char kWebhookColumns[] =
    "SELECT id,tenant_id,url,events,secret,created_at,deleted_at FROM webhooks ";
engine::WebhookRecord WebhookOf(const PgRow& r) {
  return {r.Text(0),    r.Text(1),
          r.Text(2),    absl::StrSplit(r.Text(3), ',', absl::SkipEmpty()),
          r.Text(4),    FromSecs(r.Int(5)),
          OptTime(r, 6)};
}

constexpr char kDeliveryColumns[] =
    "SELECT id,webhook_id,tenant_id,event_id,state,attempts,budget_from,next_at_ms,last_status,"
    "last_error,"
    "created_at,finished_at FROM deliveries ";
engine::DeliveryRecord DeliveryOf(const PgRow& r) {
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
engine::EventRecord EventOf(const PgRow& r) {
  return {r.Text(0),
          r.Text(1),
          r.Text(2),
          r.Text(3),
          FromSecs(r.Int(4)),
          r.Text(5),
          engine::DecodeEventFields(r.Text(6)).value_or(std::vector<engine::EventField>{})};
}

int64_t Limit(size_t n) {
  return static_cast<int64_t>(std::min<size_t>(n, std::numeric_limits<int32_t>::max()));
}

}  // namespace

// Every row of `sql` (with `params`) made into a T by `of`.
template <typename T, typename Of>
absl::StatusOr<std::vector<T>> PgStore::Rows(const std::string& sql, std::vector<PgParam> params,
                                             Of of) {
  std::vector<T> out;
  absl::Status s = Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec(sql, params);
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) out.push_back(of(r->row(i)));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<engine::WebhookRecord>> PgStore::Webhooks(const std::string& tenant_id) {
  return Rows<engine::WebhookRecord>(
      std::string(kWebhookColumns) +
          "WHERE deleted_at IS NULL AND ($1='' OR tenant_id=$1) ORDER BY seq",
      {TextParam(tenant_id)}, WebhookOf);
}

absl::StatusOr<std::vector<engine::EventRecord>> PgStore::UnrelayedEvents(size_t max) {
  return Rows<engine::EventRecord>(
      std::string(kEventColumns) + "WHERE NOT relayed ORDER BY seq LIMIT $1",
      {IntParam(Limit(max))}, EventOf);
}

absl::StatusOr<std::optional<engine::EventRecord>> PgStore::FindEvent(const std::string& id) {
  auto rows = Rows<engine::EventRecord>(std::string(kEventColumns) + "WHERE id=$1", {TextParam(id)},
                                        EventOf);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::nullopt;
  return rows->front();
}

absl::StatusOr<std::vector<engine::DeliveryRecord>> PgStore::NextDeliveries(absl::Time now,
                                                                            size_t max) {
  return Rows<engine::DeliveryRecord>(
      std::string(kDeliveryColumns) +
          "WHERE seq IN (SELECT MIN(seq) FROM deliveries WHERE state='pending' GROUP BY "
          "webhook_id) AND next_at_ms<=$1 ORDER BY seq LIMIT $2",
      {IntParam(absl::ToUnixMillis(now)), IntParam(Limit(max))}, DeliveryOf);
}

absl::StatusOr<std::vector<engine::DeliveryRecord>> PgStore::Deliveries(
    const std::string& webhook_id, size_t limit) {
  return Rows<engine::DeliveryRecord>(
      std::string(kDeliveryColumns) + "WHERE webhook_id=$1 ORDER BY seq DESC LIMIT $2",
      {TextParam(webhook_id), IntParam(Limit(limit))}, DeliveryOf);
}

absl::StatusOr<std::optional<engine::DeliveryRecord>> PgStore::FindDelivery(const std::string& id) {
  auto rows = Rows<engine::DeliveryRecord>(std::string(kDeliveryColumns) + "WHERE id=$1",
                                           {TextParam(id)}, DeliveryOf);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::nullopt;
  return rows->front();
}

absl::StatusOr<std::vector<engine::AttemptRecord>> PgStore::Attempts(
    const std::string& delivery_id) {
  return Rows<engine::AttemptRecord>(
      "SELECT delivery_id,attempt,at,status,error,took_ms FROM delivery_attempts "
      "WHERE delivery_id=$1 ORDER BY attempt",
      {TextParam(delivery_id)}, [](const PgRow& r) {
        return engine::AttemptRecord{r.Text(0),          static_cast<int>(r.Int(1)),
                                     FromSecs(r.Int(2)), static_cast<int>(r.Int(3)),
                                     r.Text(4),          r.Int(5)};
      });
}

absl::StatusOr<uint64_t> PgStore::OutboxBacklog() {
  auto rows = Rows<uint64_t>(
      "SELECT (SELECT COUNT(*) FROM outbox WHERE NOT relayed) + "
      "(SELECT COUNT(*) FROM deliveries WHERE state='pending')",
      {}, [](const PgRow& r) { return static_cast<uint64_t>(r.Int(0)); });
  if (!rows.ok()) return rows.status();
  return rows->empty() ? 0 : rows->front();
}

}  // namespace quotum::store::postgres
