// The `http` delivery provider: POSTs each released message to the
// operator's upstream (a WhatsApp HTTP API) as JSON
// {id, tenant, session, to, text, channel, type}, with the message id as
// its Idempotency-Key.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "quotum/engine/delivery.h"

namespace quotum::notify {

struct HttpProviderOptions {
  std::string url;    ///< http:// or https://, set by the operator (trusted)
  std::string token;  ///< sent as "Authorization: Bearer <token>" when set
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration timeout = absl::Seconds(10);  ///< one attempt, connect included
};

/// A 2xx is delivered; a timeout, no answer, a 5xx, 429, 408 or 425, and
/// 401, 403 or 404 (credentials or a route an operator may be fixing) can be
/// retried (with the upstream's Retry-After, in seconds or as an HTTP date);
/// any other answer (a 4xx: the upstream refuses this message) cannot. No
/// redirects. Thread-safe.
class HttpProvider final : public engine::DeliveryProvider {
 public:
  explicit HttpProvider(HttpProviderOptions options) : opts_(std::move(options)) {}
  std::string_view name() const override { return "http"; }
  engine::DeliveryAnswer Deliver(const engine::MessageRecord& m) override;

 private:
  HttpProviderOptions opts_;
};

/// The body POSTed for `m`.
std::string DeliveryBody(const engine::MessageRecord& m);

/// A Retry-After value (delta-seconds or an HTTP date) as a wait from
/// `now`; nullopt when it is neither.
std::optional<absl::Duration> ParseRetryAfter(std::string_view value, absl::Time now);

}  // namespace quotum::notify
