// The outbox relay's WebhookTransport over WebhookSender: an event's JSON,
// signed, POSTed to the webhook's URL under the operator's target policy.
#pragma once

#include "quotum/engine/outbox_relay.h"
#include "quotum/notify/webhook_sender.h"

namespace quotum::notify {

class CurlTransport final : public engine::WebhookTransport {
 public:
  explicit CurlTransport(SendOptions options) : sender_(options), policy_(options.policy) {}
  engine::WebhookAnswer Deliver(const engine::WebhookRecord& webhook,
                                const engine::EventRecord& event) override;

 private:
  WebhookSender sender_;
  TargetPolicy policy_;
};

}  // namespace quotum::notify
