#include "quotum/engine/outbox_relay.h"

#include <algorithm>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/engine.h"

namespace quotum::engine {
namespace {

constexpr const char* kEventTypes[] = {
    "usage.threshold_reached",  "usage.threshold_resolved",      "session.lease_expired",
    "subscription.changed",     "subscription.change_scheduled", "subscription.change_cancelled",
    "subscription.addon_added", "subscription.addon_cancelled"};

constexpr size_t kFanOutBatch = 500;
constexpr size_t kWebhooksPerRound = 100;
// A holder that dies (kill -9) hands the relay on after this.
constexpr absl::Duration kLeaseTtl = absl::Seconds(5);

bool Wants(const WebhookRecord& w, const std::string& type) {
  return std::any_of(w.events.begin(), w.events.end(),
                     [&](const std::string& e) { return e == "*" || e == type; });
}

// Exponential backoff with equal jitter: half of base x 2^(attempts-1)
// (capped) is fixed, the other half random.
absl::Duration RetryDelay(int attempts, absl::Duration base, absl::Duration cap) {
  absl::Duration ceiling = base;
  for (int i = 1; i < attempts && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap);
  thread_local std::mt19937_64 random{std::random_device{}()};
  const double share = std::uniform_real_distribution<double>(0.0, 1.0)(random);
  return ceiling / 2 + (ceiling / 2) * share;
}

}  // namespace

bool KnownEventType(std::string_view type) {
  if (type == "*") return true;
  return std::any_of(std::begin(kEventTypes), std::end(kEventTypes),
                     [&](const char* t) { return type == t; });
}

std::string KnownEventTypes() { return absl::StrJoin(kEventTypes, ", "); }

OutboxRelay::OutboxRelay(Store* store, Engine* engine, WebhookTransport* transport,
                         const Clock* clock, RelayOptions options)
    : store_(store), engine_(engine), transport_(transport), clock_(clock), opts_(options) {}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void OutboxRelay::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.Signal();
  if (thread_.joinable()) thread_.join();
}

void OutboxRelay::Loop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (!stop_) wake_.WaitWithTimeout(&mu_, opts_.every);
      if (stop_) return;
    }
    // A failed round (the store away) is simply tried again next round.
    RunOnce().IgnoreError();
  }
}

absl::Status OutboxRelay::RunOnce() {
  absl::StatusOr<bool> held = store_->HoldLease("outbox", opts_.instance_name, kLeaseTtl);
  if (!held.ok()) return held.status();
  if (!*held) return absl::OkStatus();
  if (absl::Status s = FanOut(); !s.ok()) return s;
  return DeliverDue();
}

absl::Status OutboxRelay::FanOut() {
  absl::StatusOr<std::vector<EventRecord>> events = store_->UnrelayedEvents(kFanOutBatch);
  if (!events.ok()) return events.status();
  if (events->empty()) return absl::OkStatus();
  absl::flat_hash_map<std::string, std::vector<WebhookRecord>> hooks;
  const absl::Time now = clock_->Now();
  CommitBatch b;
  for (const EventRecord& e : *events) {
    auto [it, fresh] = hooks.try_emplace(e.tenant_id);
    if (fresh) {
      absl::StatusOr<std::vector<WebhookRecord>> w = store_->Webhooks(e.tenant_id);
      if (!w.ok()) return w.status();
      it->second = std::move(*w);
    }
    for (const WebhookRecord& w : it->second) {
      if (!Wants(w, e.type) || w.created_at > e.at) continue;  // not for events before it
      b.deliveries.push_back(DeliveryRecord{absl::StrCat("dlv_", RandomHex(8)), w.id, e.tenant_id,
                                            e.id, "pending", 0, now, 0, "", now, std::nullopt});
    }
    b.relayed_events.push_back(e.id);
  }
  return engine_->CommitOutbox(std::move(b));
}

absl::Status OutboxRelay::DeliverDue() {
  absl::StatusOr<std::vector<DeliveryRecord>> next = store_->NextDeliveries(kWebhooksPerRound);
  if (!next.ok()) return next.status();
  if (next->empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<WebhookRecord>> all = store_->Webhooks("");
  if (!all.ok()) return all.status();
  absl::flat_hash_map<std::string, const WebhookRecord*> by_id;
  for (const WebhookRecord& w : *all) by_id[w.id] = &w;
  const absl::Time now = clock_->Now();
  for (DeliveryRecord& d : *next) {
    if (d.next_at > now) continue;
    auto w = by_id.find(d.webhook_id);
    if (w == by_id.end()) {  // deleted since: nothing more goes to it
      d.state = "dead";
      d.last_error = "the webhook was deleted";
      d.finished_at = now;
      CommitBatch b;
      b.deliveries.push_back(d);
      if (absl::Status s = engine_->CommitOutbox(std::move(b)); !s.ok()) return s;
      continue;
    }
    if (absl::Status s = Attempt(std::move(d), *w->second); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status OutboxRelay::Attempt(DeliveryRecord d, const WebhookRecord& w) {
  absl::StatusOr<std::optional<EventRecord>> event = store_->FindEvent(d.event_id);
  if (!event.ok()) return event.status();
  WebhookAnswer a;
  if (*event) {
    a = transport_->Deliver(w, **event);
  } else {
    a.error = "the event is gone";
  }
  const absl::Time now = clock_->Now();
  d.attempts += 1;
  d.last_status = a.status;
  d.last_error = a.delivered ? "" : a.error;
  // Dead after max_attempts; an admin's retry (Engine::RetryDelivery) grants
  // max_attempts more.
  if (a.delivered || d.attempts % opts_.max_attempts == 0 || !*event) {
    d.state = a.delivered ? "delivered" : "dead";
    d.finished_at = now;
  } else {
    d.next_at = now + RetryDelay(d.attempts, opts_.retry_base, opts_.retry_cap);
  }
  engine_->CountWebhookAttempt(a.delivered ? "delivered" : d.state == "dead" ? "dead" : "retry");
  CommitBatch b;
  b.attempts.push_back(AttemptRecord{d.id, d.attempts, now, a.status, d.last_error,
                                     absl::ToInt64Milliseconds(a.took)});
  b.deliveries.push_back(std::move(d));
  return engine_->CommitOutbox(std::move(b));
}

}  // namespace quotum::engine
