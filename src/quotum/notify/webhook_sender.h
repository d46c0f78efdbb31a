#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "quotum/notify/webhook_target.h"

namespace quotum::notify {

struct SendOptions {
  absl::Duration connect_timeout = absl::Seconds(2);  ///< DNS + TCP (+ TLS) connect
  absl::Duration timeout = absl::Seconds(5);          ///< the whole delivery
  /// Addresses allowed beyond the public internet; every address the host
  /// resolves to is checked against it at connect time.
  TargetPolicy policy;
};

/// One delivery attempt of one event to one endpoint.
struct WebhookRequest {
  std::string url;           ///< WebhookTarget::url
  std::string host;          ///< WebhookTarget::host: must be the URL's host
  std::string event_id;      ///< sent as X-Quotum-Event-Id; printable ASCII
  std::string secret;        ///< the endpoint's signing secret
  std::string body;          ///< the event's JSON (EventJson), sent and signed as is
  int64_t unix_seconds = 0;  ///< the signature's timestamp (now)
};

struct SendOutcome {
  int http_status = 0;     ///< 0 when no response arrived
  bool delivered = false;  ///< a 2xx answer
  /// Why it was not delivered, one human sentence; empty when delivered.
  /// "address not allowed: <ip>" when every address the host resolved to
  /// was refused by the policy.
  std::string error;
  std::string response_snippet;  ///< the first <= 512 bytes of the response body
  absl::Duration took;           ///< wall time of the attempt
};

/// Delivers webhooks over HTTP(S) with libcurl: a signed POST, no redirects
/// (a 3xx is a failure), no proxy, http/https only, bounded time, at most
/// 64 KiB of the response read, and a connection only to addresses
/// AddressAllowed accepts (checked after DNS, so a name that resolves to a
/// private address is refused too). Send retries nothing: the caller
/// schedules the next attempt (RetryDelay).
///
/// Thread-safe: Send may run concurrently on any threads; it blocks its
/// thread for at most about `timeout`.
class WebhookSender {
 public:
  explicit WebhookSender(SendOptions options);

  SendOutcome Send(const WebhookRequest& request) const;

 private:
  SendOptions options_;
};

}  // namespace quotum::notify
