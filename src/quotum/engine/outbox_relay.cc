#include "quotum/engine/outbox_relay.h"

#include <algorithm>
#include <iostream>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quotum/core/retry_policy.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/events.h"

namespace quotum::engine {
namespace {

constexpr const char* kEventTypes[] = {
    "usage.threshold_reached",       "usage.threshold_resolved",
    "session.lease_expired",         "subscription.changed",
    "subscription.change_scheduled", "subscription.change_cancelled",
    "subscription.addon_added",      "subscription.addon_cancelled",
    "subscription.topup_added",      "usage.forecast_exceeds_limit",
    "usage.report.weekly",           "usage.report.monthly"};

constexpr size_t kFanOutBatch = 500;
constexpr size_t kWebhooksPerRound = 100;
// A holder that dies (kill -9) hands the relay on after this.
constexpr absl::Duration kLeaseTtl = absl::Seconds(5);

// The wait before attempt `attempts` + 1 (core/retry_policy.h: exponential,
// with equal jitter).
absl::Duration NextWait(int attempts, const RelayOptions& o) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return RetryDelay(attempts, o.retry_base, o.retry_cap, random());
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
    : store_(store),
      engine_(engine),
      transport_(transport),
      clock_(clock),
      opts_(options),
      jobs_(
          store, engine, clock,
          ScheduleOptions{engine->forecast_every(), options.reconcile_at, options.instance_name}) {
  jobs_.SetStopCheck([this] {
    MutexLock lock(&mu_);
    return stop_;
  });
}

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
  bool busy = false;
  for (;;) {
    {
      MutexLock lock(&mu_);
      // A round that found work goes again at once; an idle one waits.
      if (!stop_ && !busy) wake_.WaitWithTimeout(&mu_, opts_.every);
      if (stop_) return;
    }
    absl::StatusOr<bool> worked = Round();
    busy = worked.ok() && *worked;
    if (!worked.ok()) {
      // Tried again next round (the store away, a commit refused).
      engine_->CountRelayFailure();
      std::cerr << "quotum: outbox relay: " << worked.status().message() << std::endl;
    }
  }
}

absl::Status OutboxRelay::RunOnce() { return Round().status(); }

absl::StatusOr<bool> OutboxRelay::Round() {
  absl::StatusOr<bool> held = HoldLease();
  if (!held.ok() || !*held) return held;
  if (absl::Status s = jobs_.RunDue(); !s.ok()) return s;
  absl::StatusOr<bool> fanned = FanOut();
  if (!fanned.ok()) return fanned;
  absl::StatusOr<bool> attempted = DeliverDue();
  if (!attempted.ok()) return attempted;
  return *fanned || *attempted;
}

absl::StatusOr<bool> OutboxRelay::HoldLease() {
  return store_->HoldLease("outbox", opts_.instance_name, kLeaseTtl);
}

absl::StatusOr<bool> OutboxRelay::FanOut() {
  absl::StatusOr<std::vector<EventRecord>> events = store_->UnrelayedEvents(kFanOutBatch);
  if (!events.ok()) return events.status();
  if (events->empty()) return false;
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
      if (!WebhookWants(w, e.type) || w.created_at > e.at) continue;  // not for events before it
      b.deliveries.push_back(DeliveryRecord{absl::StrCat("dlv_", RandomHex(8)), w.id, e.tenant_id,
                                            e.id, "pending", 0, 0, now, 0, "", now, std::nullopt});
    }
    b.relayed_events.push_back(e.id);
  }
  if (absl::Status s = engine_->CommitOutbox(std::move(b)); !s.ok()) return s;
  return true;
}

absl::StatusOr<bool> OutboxRelay::DeliverDue() {
  absl::StatusOr<std::vector<DeliveryRecord>> next =
      store_->NextDeliveries(clock_->Now(), kWebhooksPerRound);
  if (!next.ok()) return next.status();
  if (next->empty()) return false;
  absl::StatusOr<std::vector<WebhookRecord>> all = store_->Webhooks("");
  if (!all.ok()) return all.status();
  absl::flat_hash_map<std::string, const WebhookRecord*> by_id;
  for (const WebhookRecord& w : *all) by_id[w.id] = &w;
  for (DeliveryRecord& d : *next) {
    // Attempts take time (up to the timeout each): keep the lease, or stop
    // and leave the rest to its new holder.
    absl::StatusOr<bool> held = HoldLease();
    if (!held.ok()) return held.status();
    if (!*held) return false;
    auto w = by_id.find(d.webhook_id);
    absl::Status s = w == by_id.end() ? Abandon(std::move(d)) : Attempt(std::move(d), *w->second);
    if (!s.ok()) return s;
  }
  return true;
}

absl::Status OutboxRelay::Abandon(DeliveryRecord d) {
  d.state = "dead";
  d.last_error = "the webhook was deleted";
  d.finished_at = clock_->Now();
  CommitBatch b;
  b.deliveries.push_back(std::move(d));
  return engine_->CommitOutbox(std::move(b));
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
  // Dead after max_attempts since it was made or an admin last sent it again.
  if (a.delivered || d.attempts - d.budget_from >= opts_.max_attempts || !*event) {
    d.state = a.delivered ? "delivered" : "dead";
    d.finished_at = now;
  } else {
    d.next_at = now + NextWait(d.attempts - d.budget_from, opts_);
  }
  engine_->CountWebhookAttempt(a.delivered ? "delivered" : d.state == "dead" ? "dead" : "retry");
  if (w.url.starts_with("mailto:")) engine_->CountEmail(a.delivered ? "sent" : "failed");
  CommitBatch b;
  b.attempts.push_back(AttemptRecord{d.id, d.attempts, now, a.status, d.last_error,
                                     absl::ToInt64Milliseconds(a.took)});
  b.deliveries.push_back(std::move(d));
  return engine_->CommitOutbox(std::move(b));
}

}  // namespace quotum::engine
