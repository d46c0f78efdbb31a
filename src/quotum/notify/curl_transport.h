// The outbox relay's WebhookTransport: an event's JSON, signed, POSTed to
// the webhook's URL under the operator's target policy (WebhookSender); or,
// for a mailto: webhook, an e-mail through the operator's SMTP server.
#pragma once

#include "quotum/engine/outbox_relay.h"
#include "quotum/notify/smtp_sender.h"
#include "quotum/notify/webhook_sender.h"

namespace quotum::notify {

/// "mailto:" webhooks are e-mail addresses.
inline constexpr std::string_view kMailtoScheme = "mailto:";

class CurlTransport final : public engine::WebhookTransport {
 public:
  CurlTransport(SendOptions http, SmtpOptions smtp)
      : sender_(http), policy_(http.policy), smtp_(std::move(smtp)) {}
  engine::WebhookAnswer Deliver(const engine::WebhookRecord& webhook,
                                const engine::EventRecord& event) override;

 private:
  engine::WebhookAnswer Mail(const std::string& to, const engine::EventRecord& event);

  WebhookSender sender_;
  TargetPolicy policy_;
  SmtpSender smtp_;
};

}  // namespace quotum::notify
