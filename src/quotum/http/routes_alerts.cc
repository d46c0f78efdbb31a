// Alert and webhook routes: the thresholds a tenant reached, and where its events go.
#include "quotum/core/billing_period.h"
#include "quotum/engine/errors.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/json_input.h"
#include "quotum/http/render.h"
#include "quotum/http/report_query.h"
#include "quotum/notify/curl_transport.h"
#include "quotum/notify/signature.h"
#include "quotum/notify/smtp_sender.h"
#include "quotum/notify/webhook_target.h"

namespace quotum::http {
namespace {

boost::json::object AlertObject(const engine::AlertRecord& a) {
  boost::json::object o{{"meter", a.meter},
                        {"threshold", a.threshold},
                        {"value", a.value},
                        {"limit", a.limit},
                        {"period", BillingPeriod{a.period_start, a.period_end}.Label()},
                        {"period_start", FormatRfc3339(a.period_start)},
                        {"period_end", FormatRfc3339(a.period_end)},
                        {"at", FormatRfc3339(a.at)}};
  o["resolved_at"] = TimeOrNull(a.resolved_at);
  return o;
}

}  // namespace

void Api::ListAlerts(Call& c) {
  ASSIGN_OR_REPLY(range, ParseReportRange(c.query, Today(), engine_->CurrentPeriod(c.who)), c);
  ASSIGN_OR_REPLY(alerts, engine_->Alerts(c.who, range.start, range.end), c);
  boost::json::array arr;
  for (const engine::AlertRecord& a : alerts) arr.push_back(AlertObject(a));
  c.respond(JsonReply(200, boost::json::object{{"from", FormatDate(range.from)},
                                               {"to", FormatDate(range.to)},
                                               {"alerts", std::move(arr)}}));
}

}  // namespace quotum::http

// ---- Webhooks

namespace quotum::http {
namespace {

constexpr size_t kMaxDeliveriesListed = 50;

boost::json::object WebhookObject(const engine::WebhookRecord& w) {
  boost::json::array events;
  for (const std::string& e : w.events) events.push_back(boost::json::string(e));
  return {{"id", w.id},
          {"url", w.url},
          {"events", std::move(events)},
          {"created_at", FormatRfc3339(w.created_at)}};
}

boost::json::object DeliveryObject(const engine::DeliveryRecord& d,
                                   const std::vector<engine::AttemptRecord>& attempts) {
  boost::json::array tries;
  for (const engine::AttemptRecord& a : attempts) {
    tries.push_back(boost::json::object{{"attempt", a.attempt},
                                        {"at", FormatRfc3339(a.at)},
                                        {"status", a.status},
                                        {"error", a.error},
                                        {"took_ms", a.took_ms}});
  }
  boost::json::object o{{"id", d.id},
                        {"event_id", d.event_id},
                        {"state", d.state},
                        {"attempts", d.attempts},
                        {"last_status", d.last_status},
                        {"last_error", d.last_error},
                        {"created_at", FormatRfc3339(d.created_at)},
                        {"attempt_log", std::move(tries)}};
  o["next_attempt_at"] =
      d.state == "pending" ? boost::json::value(FormatRfc3339(d.next_at)) : nullptr;
  o["finished_at"] = TimeOrNull(d.finished_at);
  return o;
}

// The body's "events": an array of strings.
absl::StatusOr<std::vector<std::string>> EventsField(const boost::json::object& body) {
  const boost::json::value* v = body.if_contains("events");
  if (!v || !v->is_array()) {
    return engine::BadRequest("invalid_events",
                              "\"events\" must be an array of event types, or [\"*\"] for all.");
  }
  std::vector<std::string> out;
  for (const boost::json::value& e : v->get_array()) {
    if (!e.is_string() || e.get_string().size() > 64) {
      return engine::BadRequest("invalid_events", "Each of \"events\" must be an event type.");
    }
    out.emplace_back(e.get_string());
  }
  return out;
}

}  // namespace

void Api::CreateWebhook(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  ASSIGN_OR_REPLY(url, Fields(body).String("url", 2048), c);
  if (!url)
    return c.respond(ReplyForStatus(engine::BadRequest("missing_field", "\"url\" is required.")));
  ASSIGN_OR_REPLY(events, EventsField(body), c);
  if (absl::Status s = CheckWebhookUrl(*url); !s.ok()) return c.respond(ReplyForStatus(s));
  const std::string secret = notify::NewWebhookSecret();
  ASSIGN_OR_REPLY(w, engine_->CreateWebhook(c.who, *url, std::move(events), secret), c);
  boost::json::object o = WebhookObject(w);
  o["secret"] = secret;  // shown once
  c.respond(JsonReply(201, o));
}

absl::Status Api::CheckWebhookUrl(const std::string& url) const {
  if (url.starts_with(notify::kMailtoScheme)) {
    if (!opts_.email_enabled) {
      return engine::Unprocessable(
          "email_not_configured",
          "This server sends no e-mail: its operator has not configured [email].");
    }
    if (!notify::IsPlainAddress(url.substr(notify::kMailtoScheme.size()))) {
      return engine::Unprocessable("invalid_webhook_url",
                                   "A mailto: webhook names one plain e-mail address.");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<notify::WebhookTarget> target =
      notify::ParseWebhookUrl(url, notify::TargetPolicy{opts_.webhook_allow_hosts});
  if (!target.ok()) {
    return engine::Unprocessable("invalid_webhook_url", std::string(target.status().message()));
  }
  return absl::OkStatus();
}

void Api::ListWebhooks(Call& c) {
  ASSIGN_OR_REPLY(hooks, engine_->ListWebhooks(c.who), c);
  boost::json::array arr;
  for (const engine::WebhookRecord& w : hooks) arr.push_back(WebhookObject(w));
  c.respond(JsonReply(200, boost::json::object{{"webhooks", std::move(arr)}}));
}

void Api::DeleteWebhook(Call& c) {
  if (absl::Status s = engine_->DeleteWebhook(c.who, c.params[0]); !s.ok()) {
    return c.respond(ReplyForStatus(s));
  }
  c.respond(JsonReply(200, boost::json::object{{"deleted", c.params[0]}}));
}

void Api::WebhookDeliveries(Call& c) {
  ASSIGN_OR_REPLY(rows, engine_->WebhookDeliveries(c.who, c.params[0], kMaxDeliveriesListed), c);
  boost::json::array arr;
  for (const auto& [d, attempts] : rows) arr.push_back(DeliveryObject(d, attempts));
  c.respond(JsonReply(200, boost::json::object{{"deliveries", std::move(arr)}}));
}

void Api::RetryDelivery(Call& c) {
  ASSIGN_OR_REPLY(d, engine_->RetryDelivery(c.params[0]), c);
  c.respond(JsonReply(200, DeliveryObject(d.first, d.second)));
}

}  // namespace quotum::http
