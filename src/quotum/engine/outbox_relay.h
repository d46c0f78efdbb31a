// The outbox relay: hands every stored event to the tenant's webhooks that
// want it, at least once and in order per webhook. Events are written in the
// commit of the change that made them (store.h "The outbox"); the relay
// fans each out to one delivery per matching webhook (in one commit with
// marking it relayed), then works through each webhook's deliveries oldest
// first: a failed attempt is retried with backoff, and after
// max_attempts the delivery is dead (redeliverable by an admin) and the next
// one goes. Scale-out: runs only on the instance holding the "outbox" lease.
#pragma once

#include <cstdint>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "quotum/base/mutex.h"
#include "quotum/core/clock.h"
#include "quotum/engine/scheduled_jobs.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

class Engine;

/// What one attempt at delivering an event to a webhook came to.
struct WebhookAnswer {
  int status = 0;          ///< HTTP status; 0 = no answer
  bool delivered = false;  ///< a 2xx
  std::string error;       ///< why not, for people
  absl::Duration took;
};

/// Delivers one event to one webhook (notify/curl_transport.h: signed HTTP
/// POST). Called from the relay's thread only.
class WebhookTransport {
 public:
  virtual ~WebhookTransport() = default;
  virtual WebhookAnswer Deliver(const WebhookRecord& webhook, const EventRecord& event) = 0;
};

struct RelayOptions {
  absl::Duration every = absl::Milliseconds(200);  ///< a round when idle
  int max_attempts = 8;                            ///< then the delivery is dead
  absl::Duration retry_base = absl::Seconds(1);    ///< the first retry's ceiling
  absl::Duration retry_cap = absl::Hours(1);
  std::string instance_name;  ///< the lease holder's name (scale-out)
  /// The nightly reconciliation's time of day after midnight UTC (the relay
  /// runs the scheduled jobs, scheduled_jobs.h).
  absl::Duration reconcile_at = absl::ZeroDuration();
};

class OutboxRelay {
 public:
  OutboxRelay(Store* store, Engine* engine, WebhookTransport* transport, const Clock* clock,
              RelayOptions options);
  ~OutboxRelay();
  void Start();
  void Stop();
  /// One round: fan out, then one attempt per due webhook. Exposed for tests.
  absl::Status RunOnce();

 private:
  /// One round: true when it found work (another round goes at once).
  absl::StatusOr<bool> Round();
  absl::StatusOr<bool> HoldLease();
  /// Fans unrelayed events out to deliveries: true when there were any.
  absl::StatusOr<bool> FanOut();
  /// One attempt per webhook whose turn has come: true when there was one.
  absl::StatusOr<bool> DeliverDue();
  /// One attempt at `d`, recorded with its outcome in one commit.
  absl::Status Attempt(DeliveryRecord d, const WebhookRecord& w);
  /// Ends `d` (its webhook was deleted).
  absl::Status Abandon(DeliveryRecord d);
  void Loop();

  Store* store_;
  Engine* engine_;
  WebhookTransport* transport_;
  const Clock* clock_;
  const RelayOptions opts_;
  mutable Mutex mu_;
  CondVar wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  /// The relay thread's own.
  ScheduledJobs jobs_;
  std::thread thread_;
};

/// True when `type` is one a webhook can ask for (or "*").
bool KnownEventType(std::string_view type);
/// The event types webhooks can ask for, in a sentence-friendly list.
std::string KnownEventTypes();

}  // namespace quotum::engine
