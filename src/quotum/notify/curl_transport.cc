#include "quotum/notify/curl_transport.h"

#include "absl/time/clock.h"
#include "quotum/notify/event_json.h"

namespace quotum::notify {

engine::WebhookAnswer CurlTransport::Deliver(const engine::WebhookRecord& webhook,
                                             const engine::EventRecord& event) {
  // Checked again at delivery: the policy may have changed since it was made.
  absl::StatusOr<WebhookTarget> target = ParseWebhookUrl(webhook.url, policy_);
  if (!target.ok()) return {0, false, std::string(target.status().message()), absl::ZeroDuration()};
  SendOutcome o = sender_.Send(WebhookRequest{target->url, target->host, event.id, webhook.secret,
                                              EventJson(event), absl::ToUnixSeconds(absl::Now())});
  if (!o.delivered && o.error.empty()) o.error = "HTTP " + std::to_string(o.http_status);
  return {o.http_status, o.delivered, std::move(o.error), o.took};
}

}  // namespace quotum::notify
