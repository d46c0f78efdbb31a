// The delivery provider port (SPEC §2 "Delivery provider"): Quotum is the
// gate, not WhatsApp; a released message is handed to a provider, which
// sends it. `log` (the default) only records it; notify/http_provider.h
// forwards it to an upstream HTTP API.
#pragma once

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

/// What one hand-off of one message came to.
struct DeliveryAnswer {
  bool delivered = false;
  /// Not delivered, and worth trying again (a timeout, a 5xx, a 429).
  bool retryable = false;
  /// The upstream's Retry-After, when it said one.
  std::optional<absl::Duration> retry_after;
  int status = 0;     ///< the upstream's HTTP status; 0 = no answer
  std::string error;  ///< why not, for people (kept as the message's reason)
};

/// Hands messages to whatever sends them. Called from the releaser's thread
/// only; may block it for up to its timeout.
class DeliveryProvider {
 public:
  virtual ~DeliveryProvider() = default;
  /// "log" or "http": shown with each message sent.
  virtual std::string_view name() const = 0;
  /// Hands `m` over. The message id is the hand-off's idempotency key: the
  /// same message may be handed over again after a crash between a hand-off
  /// and its `sent` mark, and must then not be sent twice.
  virtual DeliveryAnswer Deliver(const MessageRecord& m) = 0;
};

/// Which failed messages get their charge back ([delivery] give_back).
enum class GiveBackPolicy {
  /// None (the default): the upstream may have sent a message it failed to
  /// answer for, and a tenant must not send past its limit that way.
  kNever,
  /// Those surely not sent: the upstream refused them (an answer that is
  /// not retried, such as a 400).
  kRefused,
  /// Every failed message, those that ran out of attempts too.
  kAlways,
};

/// How failed hand-offs are retried: exponential backoff with jitter from
/// `retry_base` up to `retry_cap` (or the upstream's Retry-After, if
/// longer), then `failed` after `max_attempts`; and whether a failed
/// message's charge is given back.
struct DeliveryPolicy {
  int max_attempts = 6;
  absl::Duration retry_base = absl::Seconds(1);
  absl::Duration retry_cap = absl::Minutes(5);
  GiveBackPolicy give_back = GiveBackPolicy::kNever;
};

}  // namespace quotum::engine
