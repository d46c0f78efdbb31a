// Metering routes: quota check/consume, event batches, messages, chatbot.
#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/errors.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/json_input.h"
#include "quotum/http/json_output.h"
#include "quotum/http/message_fields.h"
#include "quotum/http/render.h"

namespace quotum::http {
namespace {

constexpr size_t kMaxEventsPerBatch = 1000;

/// A batch's events decided one after another, and what records each answer.
struct EventChain {
  std::vector<engine::MeterRequest> reqs;
  std::function<void(size_t, absl::StatusOr<engine::Decision>)> record;
  engine::Principal who;
};

/// Decides event `i` of `chain`, then (from its answer) the next.
void DecideFrom(engine::Engine* engine, std::shared_ptr<EventChain> chain, size_t i) {
  engine->Consume(chain->who, std::move(chain->reqs[i]),
                  [engine, chain, i](absl::StatusOr<engine::Decision> r) mutable {
                    chain->record(i, std::move(r));
                    if (i + 1 < chain->reqs.size()) DecideFrom(engine, std::move(chain), i + 1);
                  });
}

absl::Status ReadMeterFields(const Fields& f, engine::MeterRequest& out, bool meter_required) {
  auto meter = f.String("meter", 64);
  if (!meter.ok()) return meter.status();
  if (*meter) {
    out.meter = **meter;
  } else if (meter_required) {
    return engine::BadRequest("missing_field", "\"meter\" is required.");
  }
  auto quantity = f.Quantity("quantity");
  if (!quantity.ok()) return quantity.status();
  out.quantity = quantity->value_or(1);
  auto channel = ChannelField(f);
  if (!channel.ok()) return channel.status();
  out.channel = *channel;
  auto type = TypeField(f);
  if (!type.ok()) return type.status();
  out.type = *type;
  auto partial = f.Bool("partial");
  if (!partial.ok()) return partial.status();
  out.partial = partial->value_or(false);
  auto session = f.String("session", 64);
  if (!session.ok()) return session.status();
  out.session_id = session->value_or("");
  return absl::OkStatus();
}

// One event of a batch; the router has already charged the request's api_call.
absl::Status ReadEvent(const boost::json::value& event, engine::MeterRequest& out) {
  if (!event.is_object()) return engine::BadRequest("invalid_field", "An event must be an object.");
  Fields f(event.get_object());
  if (absl::Status s = ReadMeterFields(f, out, true); !s.ok()) return s;
  auto at = f.Time("timestamp");
  if (!at.ok()) return at.status();
  auto key = f.String("idempotency_key", 255);
  if (!key.ok()) return key.status();
  out.at = *at;
  out.idempotency_key = key->value_or("");
  out.operation = "events";
  out.count_api_call = false;
  return absl::OkStatus();
}

// 403 when any event names a meter clients may not report, else 422; lists
// every bad event by index.
Reply InvalidBatchReply(const std::vector<std::pair<size_t, absl::Status>>& bad, size_t total) {
  bool forbidden = false;
  boost::json::array errors;
  for (const auto& [index, status] : bad) {
    forbidden = forbidden || status.code() == absl::StatusCode::kPermissionDenied;
    errors.push_back(boost::json::object{{"index", index},
                                         {"code", engine::MachineCode(status)},
                                         {"error", SafeText(ToStd(status.message()), 512)}});
  }
  const unsigned http_status = forbidden ? 403 : 422;
  const std::string code = forbidden ? "meter_not_reportable" : "invalid_events";
  boost::json::object o{{"success", false},
                        {"error", Cat(bad.size(), " of ", total,
                                      " events are invalid; nothing of the batch was counted.")},
                        {"code", code},
                        {"errors", std::move(errors)}};
  return JsonReply(http_status, o);
}

}  // namespace

Reply Api::DecisionReply(const Clock& clock, absl::StatusOr<engine::Decision> r,
                         const Decorate& decorate) {
  if (!r.ok()) return ReplyForStatus(r.status());
  const absl::Time now = clock.Now();
  if (!r->allowed) return DenialReply(*r, now);
  Reply reply;
  if (decorate) {
    boost::json::object o = DecisionJson(*r);
    decorate(o, *r);
    reply = JsonReply(200, o);
  } else {
    reply.body = DecisionBody(*r);
  }
  AddDecisionHeaders(reply, *r, now);
  if (r->replayed) reply.Header("Idempotent-Replayed", "true");
  return reply;
}

void Api::Meter(Call& c, engine::MeterRequest req, Decorate decorate) {
  const Clock* clock = &engine_->clock();
  engine_->Consume(c.who, std::move(req),
                   [clock, decorate = std::move(decorate),
                    respond = std::move(c.respond)](absl::StatusOr<engine::Decision> r) mutable {
                     respond(DecisionReply(*clock, std::move(r), decorate));
                   });
}

void Api::QuotaCheck(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  engine::MeterRequest req;
  if (absl::Status s = ReadMeterFields(Fields(body), req, true); !s.ok()) {
    return c.respond(ReplyForStatus(s));
  }
  req.dry_run = true;
  req.operation = "quota.check";
  Meter(c, std::move(req));
}

void Api::QuotaConsume(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  engine::MeterRequest req;
  if (absl::Status s = ReadMeterFields(Fields(body), req, true); !s.ok()) {
    return c.respond(ReplyForStatus(s));
  }
  req.idempotency_key = IdempotencyKeyOf(c.req);
  req.operation = "quota.consume";
  Meter(c, std::move(req));
}

void Api::Events(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  auto it = body.find("events");
  if (it == body.end() || !it->value().is_array() || it->value().get_array().empty()) {
    return c.respond(
        ErrorReply(400, "invalid_field", "\"events\" must be a non-empty array of events."));
  }
  const auto& events = it->value().get_array();
  if (events.size() > kMaxEventsPerBatch) {
    return c.respond(ErrorReply(413, "too_many_events",
                                Cat("At most ", kMaxEventsPerBatch, " events per batch.")));
  }
  // Parse and check everything first: a batch with any bad event changes nothing.
  std::vector<engine::MeterRequest> reqs(events.size());
  std::vector<std::pair<size_t, absl::Status>> bad;
  for (size_t i = 0; i < events.size(); ++i) {
    absl::Status s = ReadEvent(events[i], reqs[i]);
    if (!s.ok()) bad.emplace_back(i, std::move(s));
  }
  // Events that parsed are checked against the tenant's state too, so that the
  // answer lists every bad event at once.
  for (auto& [index, status] : engine_->ValidateBatch(c.who, reqs)) {
    const bool parsed =
        std::none_of(bad.begin(), bad.end(), [i = index](const auto& b) { return b.first == i; });
    if (parsed) bad.emplace_back(index, std::move(status));
  }
  std::sort(bad.begin(), bad.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (!bad.empty()) return c.respond(InvalidBatchReply(bad, events.size()));
  struct Join {
    std::vector<boost::json::object> results;
    std::atomic<size_t> pending;
    std::atomic<size_t> accepted{0};
    Respond respond;
  };
  auto join = std::make_shared<Join>();
  join->results.resize(reqs.size());
  join->pending.store(reqs.size());
  join->respond = std::move(c.respond);
  auto record = [join](size_t i, absl::StatusOr<engine::Decision> r) {
    boost::json::object o;
    o["index"] = i;
    if (r.ok()) {
      o = DecisionJson(*r);
      o["index"] = i;
      if (r->allowed) join->accepted.fetch_add(1);
      if (!r->allowed) o["code"] = "quota_exceeded";
    } else {
      o["allowed"] = false;
      o["code"] = engine::MachineCode(r.status());
      o["error"] = ToStd(r.status().message());
    }
    join->results[i] = std::move(o);
    if (join->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      boost::json::object out;
      boost::json::array arr;
      for (auto& x : join->results) arr.push_back(std::move(x));
      out["accepted"] = join->accepted.load();
      out["rejected"] = arr.size() - join->accepted.load();
      out["results"] = std::move(arr);
      join->respond(JsonReply(200, out));
    }
  };
  if (engine_->decides_concurrently()) {
    // Each event waits for the one before it: a batch is decided in order.
    auto chain = std::make_shared<EventChain>(EventChain{std::move(reqs), record, c.who});
    return DecideFrom(engine_, std::move(chain), 0);
  }
  for (size_t i = 0; i < reqs.size(); ++i) {
    engine_->Consume(c.who, std::move(reqs[i]),
                     [record, i](absl::StatusOr<engine::Decision> r) { record(i, std::move(r)); });
  }
}

void Api::ReceivedMessage(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  Fields f(body);
  ASSIGN_OR_REPLY(channel, f.String("channel", 64), c);
  ASSIGN_OR_REPLY(quantity, f.Quantity("quantity"), c);
  engine::MeterRequest req;
  req.meter = std::string(meters::kMessagesReceived);
  req.quantity = quantity.value_or(1);
  req.channel = channel.value_or("");
  req.idempotency_key = IdempotencyKeyOf(c.req);
  req.operation = "messages.received";
  Meter(c, std::move(req));
}

void Api::ChatbotTrigger(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  Fields f(body);
  ASSIGN_OR_REPLY(channel, f.String("channel", 64), c);
  engine::MeterRequest req;
  req.meter = std::string(meters::kChatbotSessions);
  req.quantity = 1;
  req.channel = channel.value_or("");
  req.idempotency_key = IdempotencyKeyOf(c.req);
  req.operation = "chatbot.trigger";
  Meter(c, std::move(req));
}

}  // namespace quotum::http
