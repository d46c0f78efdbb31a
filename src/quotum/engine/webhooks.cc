// Engine: a tenant's webhooks and their deliveries (the relay that delivers
// them is outbox_relay.cc). Rare calls: they commit and read synchronously.
#include "absl/strings/str_cat.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/outbox_relay.h"

namespace quotum::engine {
namespace {

constexpr size_t kMaxEventTypes = 32;

absl::Status WebhookNotFound(const std::string& id) {
  return Error(absl::StatusCode::kNotFound, "webhook_not_found",
               absl::StrCat("No webhook \"", id, "\"."));
}

absl::Status CheckEventTypes(const std::vector<std::string>& events) {
  if (events.empty() || events.size() > kMaxEventTypes) {
    return BadRequest("invalid_events", absl::StrCat("\"events\" must list 1 to ", kMaxEventTypes,
                                                     " event types, or [\"*\"] for all."));
  }
  for (const std::string& e : events) {
    if (!KnownEventType(e)) {
      return Unprocessable("unknown_event_type",
                           absl::StrCat("Unknown event type \"", e,
                                        "\"; known: ", KnownEventTypes(), ", or \"*\"."));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WebhookRecord> Engine::CreateWebhook(const Principal& who, std::string url,
                                                    std::vector<std::string> events,
                                                    std::string secret) {
  if (absl::Status s = CheckEventTypes(events); !s.ok()) return s;
  absl::StatusOr<std::vector<WebhookRecord>> have = store_->Webhooks(who.tenant->id);
  if (!have.ok()) return StoreUnavailable("The webhooks");
  if (have->size() >= opts_.max_webhooks_per_tenant) {
    return Error(absl::StatusCode::kAlreadyExists, "too_many_webhooks",
                 absl::StrCat("A tenant has at most ", opts_.max_webhooks_per_tenant,
                              " webhooks; delete one first."));
  }
  WebhookRecord w{absl::StrCat("wh_", RandomHex(8)),
                  who.tenant->id,
                  std::move(url),
                  std::move(events),
                  std::move(secret),
                  clock_->Now(),
                  std::nullopt};
  CommitBatch b;
  b.webhooks.push_back(w);
  if (absl::Status s = CommitOutbox(std::move(b)); !s.ok()) return s;
  return w;
}

absl::StatusOr<std::vector<WebhookRecord>> Engine::ListWebhooks(const Principal& who) {
  absl::StatusOr<std::vector<WebhookRecord>> have = store_->Webhooks(who.tenant->id);
  if (!have.ok()) return StoreUnavailable("The webhooks");
  return have;
}

absl::Status Engine::DeleteWebhook(const Principal& who, const std::string& id) {
  absl::StatusOr<std::vector<WebhookRecord>> have = store_->Webhooks(who.tenant->id);
  if (!have.ok()) return StoreUnavailable("The webhooks");
  auto it =
      std::find_if(have->begin(), have->end(), [&](const WebhookRecord& w) { return w.id == id; });
  if (it == have->end()) return WebhookNotFound(id);
  it->deleted_at = clock_->Now();
  CommitBatch b;
  b.webhooks.push_back(*it);
  return CommitOutbox(std::move(b));
}

absl::StatusOr<std::vector<std::pair<DeliveryRecord, std::vector<AttemptRecord>>>>
Engine::WebhookDeliveries(const Principal& who, const std::string& id, size_t limit) {
  absl::StatusOr<std::vector<WebhookRecord>> have = store_->Webhooks(who.tenant->id);
  if (!have.ok()) return StoreUnavailable("The webhooks");
  if (std::none_of(have->begin(), have->end(),
                   [&](const WebhookRecord& w) { return w.id == id; })) {
    return WebhookNotFound(id);
  }
  absl::StatusOr<std::vector<DeliveryRecord>> deliveries = store_->Deliveries(id, limit);
  if (!deliveries.ok()) return StoreUnavailable("The deliveries");
  std::vector<std::pair<DeliveryRecord, std::vector<AttemptRecord>>> out;
  for (DeliveryRecord& d : *deliveries) {
    absl::StatusOr<std::vector<AttemptRecord>> attempts = store_->Attempts(d.id);
    if (!attempts.ok()) return StoreUnavailable("The delivery attempts");
    out.emplace_back(std::move(d), std::move(*attempts));
  }
  return out;
}

absl::StatusOr<std::pair<DeliveryRecord, std::vector<AttemptRecord>>> Engine::RetryDelivery(
    const std::string& id) {
  absl::StatusOr<std::optional<DeliveryRecord>> d = store_->FindDelivery(id);
  if (!d.ok()) return StoreUnavailable("The deliveries");
  if (!*d) {
    return Error(absl::StatusCode::kNotFound, "delivery_not_found",
                 absl::StrCat("No delivery \"", id, "\"."));
  }
  DeliveryRecord r = **d;
  if (r.state != "pending") r.budget_from = r.attempts;
  r.state = "pending";
  r.next_at = clock_->Now();
  r.finished_at.reset();
  // Attempts keep counting (their rows are kept); a finished delivery gets
  // max_attempts more from here. A pending one just goes next round.
  CommitBatch b;
  b.deliveries.push_back(r);
  if (absl::Status s = CommitOutbox(std::move(b)); !s.ok()) return s;
  absl::StatusOr<std::vector<AttemptRecord>> attempts = store_->Attempts(id);
  if (!attempts.ok()) return StoreUnavailable("The delivery attempts");
  return std::make_pair(std::move(r), std::move(*attempts));
}

}  // namespace quotum::engine
