// Message routes: send (held in the queue at the limit under on_limit =
// "queue"), schedule, read, list and cancel (SPEC §2 "Deferred delivery").
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/errors.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/json_output.h"
#include "quotum/http/message_fields.h"
#include "quotum/http/render.h"
#include "quotum/http/report_query.h"

namespace quotum::http {
namespace {

constexpr size_t kDefaultPageSize = 100;
constexpr size_t kMaxPageSize = 500;
// How far ahead a send may be scheduled.
constexpr absl::Duration kMaxScheduleAhead = absl::Hours(24 * 366);

// The cursor of a page: "<created_at unix seconds>.<id>", opaque to clients.
std::string CursorText(const engine::MessageCursor& c) {
  return absl::StrCat(absl::ToUnixSeconds(c.created_at), ".", c.id);
}

absl::StatusOr<std::optional<engine::MessageCursor>> CursorParam(
    const boost::urls::params_view& q) {
  std::optional<std::string> text = QueryParam(q, "cursor");
  if (!text) return std::nullopt;
  const size_t dot = text->find('.');
  int64_t secs = 0;
  if (dot == std::string::npos || dot + 1 == text->size() ||
      !absl::SimpleAtoi(ToAbsl(std::string_view(*text).substr(0, dot)), &secs)) {
    return engine::BadRequest("invalid_cursor",
                              "\"cursor\" must be a next_cursor this listing returned.");
  }
  return engine::MessageCursor{absl::FromUnixSeconds(secs), text->substr(dot + 1)};
}

absl::StatusOr<size_t> PageSizeParam(const boost::urls::params_view& q) {
  std::optional<std::string> text = QueryParam(q, "limit");
  if (!text) return kDefaultPageSize;
  size_t n = 0;
  if (!absl::SimpleAtoi(*text, &n) || n < 1 || n > kMaxPageSize) {
    return engine::Unprocessable(
        "invalid_limit", absl::StrCat("\"limit\" must be an integer in [1, ", kMaxPageSize, "]."));
  }
  return n;
}

absl::StatusOr<std::string> StatusParam(const boost::urls::params_view& q) {
  std::optional<std::string> status = QueryParam(q, "status");
  if (!status || status->empty()) return std::string();  // any
  for (std::string_view known :
       {"queued", "releasing", "released", "sent", "failed", "cancelled"}) {
    if (*status == known) return *status;
  }
  return engine::Unprocessable(
      "invalid_status",
      "\"status\" must be queued, releasing, released, sent, failed or cancelled.");
}

// A message as every route shows it.
boost::json::object MessageJson(const engine::MessageRecord& m) {
  boost::json::object o;
  o["id"] = m.id;
  o["session"] = m.session_id;
  o["channel"] = m.channel;
  o["type"] = m.type;
  o["to"] = m.to;
  o["text"] = m.text;
  o["status"] = m.status;
  o["reason"] = m.reason.empty() ? boost::json::value(nullptr) : boost::json::value(m.reason);
  o["created_at"] = FormatRfc3339(m.created_at);
  o["send_at"] = TimeOrNull(m.send_at);
  o["released_at"] = TimeOrNull(m.released_at);
  o["sent_at"] = TimeOrNull(m.sent_at);
  return o;
}

// A send's id: random, or, with an Idempotency-Key, derived from the tenant
// and the key, so a retried send names the message its first attempt made
// (or queued).
std::string SendIdOf(const std::string& tenant_id, const std::string& key) {
  if (key.empty()) return Cat("msg_", engine::RandomHex(12));
  return Cat("msg_",
             absl::BytesToHexString(engine::HashSecret(Cat(tenant_id, "\n", key))).substr(0, 24));
}

}  // namespace

void Api::SendMessage(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  ASSIGN_OR_REPLY(send, ReadSendFields(Fields(body), true), c);
  engine::MeterRequest req;
  req.meter = std::string(meters::kMessagesSent);
  req.quantity = 1;
  req.channel = send.channel;
  req.type = send.type;
  req.idempotency_key = IdempotencyKeyOf(c.req);
  req.session_id = send.session_id;
  req.operation = Cat("messages.send|", send.session_id, "|", send.to, "|", send.text);
  send.id = SendIdOf(c.who.tenant->id, req.idempotency_key);
  const absl::Time now = engine_->clock().Now();
  engine::MessageRecord sent;
  sent.id = send.id;
  sent.tenant_id = c.who.tenant->id;
  sent.channel = engine_->catalog().ChannelOr(req.channel);
  sent.to = send.to;
  sent.text = send.text;
  sent.created_at = now;
  sent.session_id = send.session_id;
  sent.type = std::string(MessageTypeName(send.type));
  sent.released_at = sent.due_at = sent.updated_at = absl::FromUnixMillis(absl::ToUnixMillis(now));
  sent.paced = true;  // its decision applied the session's messages rule
  // The log provider accepts it, so it is sent; another hands it over next.
  const std::string provider(engine_->provider_name());
  sent.status = provider == "log" ? "sent" : "released";
  if (provider == "log") sent.sent_at = sent.released_at;
  const std::string status = sent.status;
  req.messages.push_back(std::move(sent));
  engine_->Consume(c.who, std::move(req),
                   [this, who = c.who, send = std::move(send), provider, status,
                    respond = std::move(c.respond)](absl::StatusOr<engine::Decision> r) mutable {
                     if (r.ok() && engine_->QueuesAtLimit(who, *r)) {
                       return QueueRefusedSend(std::move(respond), who, std::move(send), *r);
                     }
                     const std::string id = send.id;
                     respond(DecisionReply(engine_->clock(), std::move(r),
                                           [&](boost::json::object& o, const engine::Decision& d) {
                                             o["success"] = true;
                                             // A replay answers with the first decision; its id is
                                             // not re-sent.
                                             if (!d.replayed) o["message_id"] = id;
                                             o["status"] = status;
                                             o["provider"] = provider;
                                           }));
                   });
}

void Api::QueueRefusedSend(Respond respond, const engine::Principal& who, engine::HeldSend send,
                           const engine::Decision& refused) {
  auto held =
      [respond = std::move(respond)](absl::StatusOr<std::vector<engine::MessageRecord>> r) mutable {
        if (!r.ok()) return respond(ReplyForStatus(r.status()));
        boost::json::object o = MessageJson(r->front());
        o["success"] = true;
        o["message_id"] = r->front().id;
        respond(JsonReply(202, o));
      };
  if (refused.replayed) {
    // The first attempt queued it, unless its commit failed. Finding it reads
    // the store: on the read pool, not on the thread that answered the decision.
    return read_pool_->Run(
        [this, who, send = std::move(send), refused, held = std::move(held)]() mutable {
          absl::StatusOr<engine::MessageRecord> known = engine_->FindMessage(who, send.id);
          if (known.ok()) return held(std::vector<engine::MessageRecord>{*std::move(known)});
          if (known.status().code() != absl::StatusCode::kNotFound) return held(known.status());
          HoldRefusedSend(std::move(held), who, std::move(send), refused);
        });
  }
  HoldRefusedSend(std::move(held), who, std::move(send), refused);
}

void Api::HoldRefusedSend(engine::Engine::Callback<std::vector<engine::MessageRecord>> held,
                          const engine::Principal& who, engine::HeldSend send,
                          const engine::Decision& refused) {
  send.reason = refused.reason == engine::DenyReason::kTierLimit ? "tier_limit"
                : refused.rule == meters::kCredits               ? "credits_exhausted"
                                                                 : "quota_exceeded";
  absl::StatusOr<engine::MessageRecord> m = engine_->HeldMessage(who, std::move(send));
  if (!m.ok()) return held(m.status());
  engine_->QueueMessages(who, {*std::move(m)}, std::move(held));
}

void Api::ScheduleMessage(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  Fields f(body);
  ASSIGN_OR_REPLY(send, ReadSendFields(f, true), c);
  auto send_at = f.Time("send_at");
  if (!send_at.ok()) {
    return c.respond(ErrorReply(400, "invalid_send_at",
                                Cat(send_at.status().message(), " (RFC 3339, with a zone).")));
  }
  if (!*send_at) {
    return c.respond(ErrorReply(400, "missing_field", "\"send_at\" (when to send) is required."));
  }
  const absl::Time now = engine_->clock().Now();
  if (**send_at <= now || **send_at > now + kMaxScheduleAhead) {
    return c.respond(ErrorReply(422, "invalid_send_at",
                                "\"send_at\" must lie in the future, at most 366 days ahead."));
  }
  send.send_at = **send_at;
  send.reason = "scheduled";
  ASSIGN_OR_REPLY(m, engine_->HeldMessage(c.who, std::move(send)), c);
  engine_->QueueMessages(c.who, {std::move(m)},
                         [respond = std::move(c.respond)](
                             absl::StatusOr<std::vector<engine::MessageRecord>> r) mutable {
                           if (!r.ok()) return respond(ReplyForStatus(r.status()));
                           respond(JsonReply(202, MessageJson(r->front())));
                         });
}

void Api::GetMessage(Call& c) {
  ASSIGN_OR_REPLY(m, engine_->FindMessage(c.who, c.params[0]), c);
  c.respond(JsonReply(200, MessageJson(m)));
}

void Api::CancelMessage(Call& c) {
  engine_->CancelMessage(
      c.who, c.params[0],
      [respond = std::move(c.respond)](absl::StatusOr<engine::MessageRecord> m) mutable {
        if (!m.ok()) return respond(ReplyForStatus(m.status()));
        respond(JsonReply(200, MessageJson(*m)));
      });
}

void Api::ListMessages(Call& c) {
  ASSIGN_OR_REPLY(status, StatusParam(c.query), c);
  ASSIGN_OR_REPLY(limit, PageSizeParam(c.query), c);
  ASSIGN_OR_REPLY(after, CursorParam(c.query), c);
  ASSIGN_OR_REPLY(page, engine_->ListMessages(c.who, status, after, limit), c);
  boost::json::array messages;
  for (const engine::MessageRecord& m : page.messages) messages.push_back(MessageJson(m));
  boost::json::object o;
  o["messages"] = std::move(messages);
  o["next_cursor"] =
      page.next ? boost::json::value(CursorText(*page.next)) : boost::json::value(nullptr);
  c.respond(JsonReply(200, o));
}

}  // namespace quotum::http
