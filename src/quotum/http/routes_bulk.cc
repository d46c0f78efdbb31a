// POST /api/v2/messages/bulk: one text to many recipients through one
// session, admitted per unit in one decision (SPEC §2 "Enforcement"): the
// first that fit the quota, credits and warm-up cap are released (handed to
// the provider as the session's messages rule paces them); in "queue" mode
// the rest are queued in the same commit, in "immediate" mode they are
// refused and listed.
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/errors.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/json_output.h"
#include "quotum/http/message_fields.h"
#include "quotum/http/render.h"

namespace quotum::http {
namespace {

constexpr size_t kMaxRecipients = 10000;
// The text times its recipients: what one bulk may store.
constexpr size_t kMaxBulkBytes = 16 << 20;

// A phone number as WhatsApp APIs take it: an optional '+' and 7 to 15 digits.
bool IsPhoneNumber(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.size() < 7 || s.size() > 15) return false;
  for (char ch : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(ch))) return false;
  }
  return true;
}

struct Recipients {
  std::vector<std::pair<size_t, std::string>> valid;  ///< (index, number)
  boost::json::array invalid;                         ///< rejections, by index
};

absl::StatusOr<Recipients> ReadRecipients(const boost::json::object& body) {
  const boost::json::value* list = body.if_contains("recipients");
  if (!list || list->is_null()) {
    return engine::BadRequest("missing_field", "\"recipients\" (phone numbers) is required.");
  }
  if (!list->is_array()) {
    return engine::BadRequest("invalid_field", "\"recipients\" must be an array of strings.");
  }
  const boost::json::array& a = list->get_array();
  if (a.empty()) return engine::Unprocessable("no_recipients", "\"recipients\" is empty.");
  if (a.size() > kMaxRecipients) {
    return engine::Error(
        absl::StatusCode::kOutOfRange, "too_many_recipients",
        Cat("A bulk send takes at most ", kMaxRecipients, " recipients; this has ", a.size(), "."));
  }
  Recipients r;
  for (size_t i = 0; i < a.size(); ++i) {
    const boost::json::string* s = a[i].if_string();
    if (s && IsPhoneNumber(std::string_view(s->data(), s->size()))) {
      r.valid.emplace_back(i, std::string(s->data(), s->size()));
      continue;
    }
    r.invalid.push_back(boost::json::object{
        {"index", i},
        {"to", s ? boost::json::value(SafeText(std::string_view(s->data(), s->size()), 64)) : a[i]},
        {"code", "invalid_recipient"},
        {"error", "Not a phone number: an optional + and 7 to 15 digits."}});
  }
  if (r.valid.empty()) {
    return engine::Unprocessable("invalid_recipients", "No recipient is a valid phone number.");
  }
  return r;
}

// The message ids of a bulk: random, or, with an Idempotency-Key, derived
// from the tenant, the key and the recipient's index (a retry names the
// same messages).
std::string BulkIdOf(const std::string& tenant_id, const std::string& key, size_t index) {
  if (key.empty()) return Cat("msg_", engine::RandomHex(12));
  return Cat("msg_",
             absl::BytesToHexString(engine::HashSecret(Cat(tenant_id, "\n", key, "\n", index)))
                 .substr(0, 24));
}

}  // namespace

void Api::BulkSend(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  Fields f(body);
  ASSIGN_OR_REPLY(send, ReadSendFields(f, false), c);
  ASSIGN_OR_REPLY(mode, f.String("mode", 16), c);
  const bool queue = mode && *mode == "queue";
  if (mode && !queue && *mode != "immediate") {
    return c.respond(ErrorReply(422, "invalid_mode", "\"mode\" is immediate or queue."));
  }
  ASSIGN_OR_REPLY(recipients, ReadRecipients(body), c);
  if (send.text.size() * recipients.valid.size() > kMaxBulkBytes) {
    return c.respond(
        ErrorReply(413, "bulk_too_large",
                   Cat("A bulk stores its text once per recipient: at most ", kMaxBulkBytes >> 20,
                       " MiB in all; send fewer recipients or a shorter text.")));
  }
  BulkPlan plan{std::move(recipients.valid), std::move(recipients.invalid), queue,
                IdempotencyKeyOf(c.req)};
  if (plan.idempotency_key.size() > 255) {
    return c.respond(ErrorReply(400, "invalid_idempotency_key",
                                "Idempotency-Key is longer than 255 characters."));
  }
  send.reason.clear();
  ASSIGN_OR_REPLY(model, engine_->HeldMessage(c.who, std::move(send)), c);
  engine::MeterRequest req;
  req.meter = std::string(meters::kMessagesSent);
  req.quantity = plan.valid.size();
  req.partial = true;
  req.channel = model.channel;
  req.type = ParseMessageType(model.type).value_or(MessageType::kText);
  req.session_id = model.session_id;
  req.paced_later = true;
  req.count_api_call = false;  // the router counted this request's
  req.queue_rest = queue;
  req.idempotency_key = plan.idempotency_key;
  req.operation = Cat("messages.bulk|", model.session_id, "|", queue, "|", model.text);
  model.status = "released";
  model.released_at = model.updated_at;
  for (size_t i = 0; i < plan.valid.size(); ++i) {
    engine::MessageRecord m = model;
    m.id = BulkIdOf(c.who.tenant->id, plan.idempotency_key, plan.valid[i].first);
    m.to = plan.valid[i].second;
    m.seq = static_cast<uint32_t>(i);
    absl::StrAppend(&req.operation, "|", m.to);
    req.messages.push_back(std::move(m));
  }
  std::vector<engine::MessageRecord> messages = req.messages;
  engine_->Consume(c.who, std::move(req),
                   [this, who = c.who, plan = std::move(plan), messages = std::move(messages),
                    respond = std::move(c.respond)](absl::StatusOr<engine::Decision> d) mutable {
                     if (!d.ok()) return respond(ReplyForStatus(d.status()));
                     FinishBulk(std::move(respond), who, plan, std::move(messages), *d);
                   });
}

void Api::FinishBulk(Respond respond, const engine::Principal& who, const BulkPlan& plan,
                     std::vector<engine::MessageRecord> messages, const engine::Decision& d) {
  const size_t admitted = d.allowed ? d.consumed : 0;
  // A replay of a bulk queued whole finds it queued (unless that commit failed).
  if (d.replayed && admitted == 0 && plan.queue && !messages.empty()) {
    absl::StatusOr<engine::MessageRecord> first = engine_->FindMessage(who, messages.front().id);
    if (first.ok()) return respond(BulkReply(plan, messages, 0, d));
    if (first.status().code() != absl::StatusCode::kNotFound) {
      return respond(ReplyForStatus(first.status()));
    }
  }
  if (admitted == 0 && plan.queue) {
    // Nothing charged, nothing written: the whole bulk waits in the queue.
    for (engine::MessageRecord& m : messages) {
      m.status = "queued";
      m.reason = "limit_reached";
      m.released_at.reset();
    }
    std::vector<engine::MessageRecord> held = messages;
    return engine_->QueueMessages(
        who, std::move(held),
        [this, respond = std::move(respond), plan, messages = std::move(messages),
         d](absl::StatusOr<std::vector<engine::MessageRecord>> r) mutable {
          if (!r.ok()) return respond(ReplyForStatus(r.status()));
          respond(BulkReply(plan, messages, 0, d));
        });
  }
  respond(BulkReply(plan, messages, admitted, d));
}

Reply Api::BulkReply(const BulkPlan& plan, const std::vector<engine::MessageRecord>& messages,
                     size_t admitted, const engine::Decision& d) const {
  boost::json::array listed, rejected = plan.invalid;
  for (size_t i = 0; i < messages.size(); ++i) {
    const bool goes = i < admitted || plan.queue;
    const size_t index = plan.valid[i].first;
    if (goes) {
      listed.push_back(boost::json::object{{"index", index},
                                           {"id", messages[i].id},
                                           {"to", messages[i].to},
                                           {"status", i < admitted ? "released" : "queued"}});
    } else {
      rejected.push_back(boost::json::object{{"index", index},
                                             {"to", messages[i].to},
                                             {"code", "limit_reached"},
                                             {"error",
                                              "Past the limit of the quota, credits, warm-up cap "
                                              "or messaging tier (mode immediate)."}});
    }
  }
  const size_t queued = plan.queue ? messages.size() - admitted : 0;
  boost::json::object o = DecisionJson(d);
  o["accepted"] = admitted;
  o["queued"] = queued;
  o["rejected"] = rejected.size();
  o["messages"] = std::move(listed);
  o["rejections"] = std::move(rejected);
  // The rate-limit headers are the general rule's (the router's); the
  // quota's figures are in the body.
  Reply r = JsonReply(admitted + queued > 0 ? 202 : 429, o);
  if (d.replayed) r.Header("Idempotent-Replayed", "true");
  return r;
}

}  // namespace quotum::http
