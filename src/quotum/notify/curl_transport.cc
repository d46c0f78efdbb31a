#include "quotum/notify/curl_transport.h"

#include "absl/time/clock.h"
#include "quotum/notify/email_text.h"
#include "quotum/notify/event_json.h"

namespace quotum::notify {

engine::WebhookAnswer CurlTransport::Deliver(const engine::WebhookRecord& webhook,
                                             const engine::EventRecord& event) {
  if (webhook.url.starts_with(kMailtoScheme)) {
    return Mail(webhook.url.substr(kMailtoScheme.size()), event);
  }
  // Checked again at delivery: the policy may have changed since it was made.
  absl::StatusOr<WebhookTarget> target = ParseWebhookUrl(webhook.url, policy_);
  if (!target.ok()) return {0, false, std::string(target.status().message()), absl::ZeroDuration()};
  SendOutcome o = sender_.Send(WebhookRequest{target->url, target->host, event.id, webhook.secret,
                                              EventJson(event), absl::ToUnixSeconds(absl::Now())});
  if (!o.delivered && o.error.empty()) o.error = "HTTP " + std::to_string(o.http_status);
  return {o.http_status, o.delivered, std::move(o.error), o.took};
}

engine::WebhookAnswer CurlTransport::Mail(const std::string& to, const engine::EventRecord& event) {
  if (!smtp_.enabled()) return {0, false, "e-mail is not configured ([email] smtp_url)", {}};
  const absl::Time start = absl::Now();
  SmtpOutcome o = smtp_.Send(EmailOf(event, to));
  return {o.smtp_code, o.sent, std::move(o.error), absl::Now() - start};
}

}  // namespace quotum::notify
