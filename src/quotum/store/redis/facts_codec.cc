#include "quotum/store/redis/facts_codec.h"

#include <boost/json.hpp>

#include "quotum/store/column_values.h"
#include "quotum/store/redis/json_fields.h"

namespace quotum::store::redis {
namespace {

namespace json = boost::json;

void PutMillis(json::object& o, std::string_view key, const std::optional<absl::Time>& t) {
  if (t) o[key] = absl::ToUnixMillis(*t);
}

json::object MessageObject(const engine::MessageRecord& m) {
  json::object o{{"id", m.id},
                 {"tenant", m.tenant_id},
                 {"channel", m.channel},
                 {"to", m.to},
                 {"text", m.text},
                 {"status", m.status},
                 {"at", Secs(m.created_at)},
                 {"session", m.session_id},
                 {"type", m.type},
                 {"seq", static_cast<int64_t>(m.seq)},
                 {"reason", m.reason},
                 {"attempts", static_cast<int64_t>(m.release_attempts)},
                 {"updated_ms", absl::ToUnixMillis(m.updated_at)},
                 {"paced", m.paced}};
  PutMillis(o, "send_at_ms", m.send_at);
  PutMillis(o, "due_ms", m.due_at);
  PutMillis(o, "released_ms", m.released_at);
  PutMillis(o, "sent_ms", m.sent_at);
  return o;
}

// The text of o[key], or an error naming it.
absl::StatusOr<int64_t> Int(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_int64()) return absl::InvalidArgumentError("facts: no " + std::string(key));
  return v->get_int64();
}

absl::StatusOr<engine::MessageRecord> MessageOf(const json::object& o) {
  engine::MessageRecord m;
  for (auto [key, field] : {std::pair<std::string_view, std::string*>{"id", &m.id},
                            {"tenant", &m.tenant_id},
                            {"channel", &m.channel},
                            {"to", &m.to},
                            {"text", &m.text},
                            {"status", &m.status}}) {
    absl::StatusOr<std::string> v = TextField(o, key, "facts");
    if (!v.ok()) return v.status();
    *field = std::move(*v);
  }
  absl::StatusOr<int64_t> at = Int(o, "at");
  if (!at.ok()) return at.status();
  m.created_at = absl::FromUnixSeconds(*at);
  // Entries written before the queue existed lack the fields below.
  if (auto v = TextField(o, "session", "facts"); v.ok()) m.session_id = std::move(*v);
  if (auto v = TextField(o, "type", "facts"); v.ok()) m.type = std::move(*v);
  if (auto v = TextField(o, "reason", "facts"); v.ok()) m.reason = std::move(*v);
  if (auto v = Int(o, "seq"); v.ok()) m.seq = static_cast<uint32_t>(*v);
  if (auto v = Int(o, "attempts"); v.ok()) m.release_attempts = static_cast<uint32_t>(*v);
  m.updated_at = m.created_at;
  if (const json::value* paced = o.if_contains("paced"); paced && paced->is_bool()) {
    m.paced = paced->get_bool();
  }
  if (auto v = Int(o, "updated_ms"); v.ok()) m.updated_at = absl::FromUnixMillis(*v);
  for (auto [key, field] :
       {std::pair<std::string_view, std::optional<absl::Time>*>{"send_at_ms", &m.send_at},
        {"due_ms", &m.due_at},
        {"released_ms", &m.released_at},
        {"sent_ms", &m.sent_at}}) {
    if (auto v = Int(o, key); v.ok()) *field = absl::FromUnixMillis(*v);
  }
  return m;
}

// f.messages and f.queue_rest from `o` ("message": entries made before
// bulk sends carry one).
absl::Status AddMessages(const json::object& o, engine::UsageFacts& f) {
  std::vector<const json::value*> found;
  if (const json::value* m = o.if_contains("message")) found.push_back(m);
  if (const json::value* ms = o.if_contains("messages")) {
    if (!ms->is_array()) return absl::InvalidArgumentError("facts: messages is not an array");
    for (const json::value& m : ms->get_array()) found.push_back(&m);
  }
  for (const json::value* m : found) {
    if (!m->is_object()) return absl::InvalidArgumentError("facts: a message is not an object");
    absl::StatusOr<engine::MessageRecord> message = MessageOf(m->get_object());
    if (!message.ok()) return message.status();
    f.messages.push_back(std::move(*message));
  }
  const json::value* qr = o.if_contains("qr");
  f.queue_rest = qr && qr->is_bool() && qr->get_bool();
  return absl::OkStatus();
}

// `f` with the limit, period end and thresholds of `o` (EncodeFacts writes
// them together).
absl::StatusOr<engine::UsageFacts> WithLimit(const json::object& o, engine::UsageFacts f) {
  const json::value* limit = o.if_contains("limit");
  const json::value* thresholds = o.if_contains("thr");
  absl::StatusOr<int64_t> end = Int(o, "end");
  if (!end.ok()) return end.status();
  if (!limit->is_number() || !thresholds || !thresholds->is_array()) {
    return absl::InvalidArgumentError("facts: a limit without its thresholds");
  }
  boost::system::error_code ec;
  f.limit = limit->to_number<uint64_t>(ec);
  if (ec) return absl::InvalidArgumentError("facts: limit is not a count");
  f.period_end = absl::FromUnixSeconds(*end);
  for (const json::value& t : thresholds->get_array()) {
    if (!t.is_int64()) return absl::InvalidArgumentError("facts: a threshold is not an integer");
    f.thresholds.push_back(static_cast<int>(t.get_int64()));
  }
  return f;
}

json::object CreditsObject(const engine::CreditsFacts& c) {
  json::array thresholds;
  for (int t : c.thresholds) thresholds.push_back(t);
  json::object o{{"u", c.per_unit}, {"thr", std::move(thresholds)}};
  if (c.limit) o["limit"] = *c.limit;
  return o;
}

absl::StatusOr<engine::CreditsFacts> CreditsOf(const json::value& v) {
  const json::object* o = v.if_object();
  const json::value* per_unit = o ? o->if_contains("u") : nullptr;
  const json::value* thresholds = o ? o->if_contains("thr") : nullptr;
  if (!per_unit || !per_unit->is_number() || !thresholds || !thresholds->is_array()) {
    return absl::InvalidArgumentError("facts: credits without their cost or thresholds");
  }
  engine::CreditsFacts c;
  boost::system::error_code ec;
  c.per_unit = per_unit->to_number<uint64_t>(ec);
  if (ec || c.per_unit == 0)
    return absl::InvalidArgumentError("facts: credits cost is not a count");
  if (const json::value* limit = o->if_contains("limit")) {
    c.limit = limit->to_number<uint64_t>(ec);
    if (ec) return absl::InvalidArgumentError("facts: credits limit is not a count");
  }
  for (const json::value& t : thresholds->get_array()) {
    if (!t.is_int64()) return absl::InvalidArgumentError("facts: a threshold is not an integer");
    c.thresholds.push_back(static_cast<int>(t.get_int64()));
  }
  return c;
}

}  // namespace

std::string EncodeFacts(const engine::UsageFacts& f) {
  json::object o{
      {"meter", f.meter}, {"channel", f.channel}, {"period", Secs(f.period_start)},
      {"at", Secs(f.at)}, {"now", Secs(f.now)},   {"qty", static_cast<int64_t>(f.quantity)}};
  if (!f.messages.empty()) {
    json::array messages;
    for (const engine::MessageRecord& m : f.messages) messages.push_back(MessageObject(m));
    o["messages"] = std::move(messages);
    if (f.queue_rest) o["qr"] = true;
  }
  if (f.late_period_start) o["late"] = Secs(*f.late_period_start);
  if (f.give_back) o["gb"] = true;
  if (f.credits) {
    o["cr"] = CreditsObject(*f.credits);
    o["end"] = Secs(f.period_end);
  }
  if (f.limit) {
    o["limit"] = *f.limit;
    o["end"] = Secs(f.period_end);
    json::array thresholds;
    for (int t : f.thresholds) thresholds.push_back(t);
    o["thr"] = std::move(thresholds);
  }
  return json::serialize(o);
}

absl::StatusOr<engine::UsageFacts> DecodeFacts(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) return absl::InvalidArgumentError("facts: not a JSON object");
  const json::object& o = v.get_object();
  engine::UsageFacts f;
  absl::StatusOr<std::string> meter = TextField(o, "meter", "facts"),
                              channel = TextField(o, "channel", "facts");
  absl::StatusOr<int64_t> period = Int(o, "period"), at = Int(o, "at"), now = Int(o, "now"),
                          qty = Int(o, "qty");
  for (const absl::Status& s : {meter.status(), channel.status(), period.status(), at.status(),
                                now.status(), qty.status()}) {
    if (!s.ok()) return s;
  }
  if (*qty < 0) return absl::InvalidArgumentError("facts: negative qty");
  f.meter = std::move(*meter);
  f.channel = std::move(*channel);
  f.period_start = absl::FromUnixSeconds(*period);
  f.at = absl::FromUnixSeconds(*at);
  f.now = absl::FromUnixSeconds(*now);
  f.quantity = static_cast<uint64_t>(*qty);
  if (const json::value* gb = o.if_contains("gb")) {
    if (!gb->is_bool()) return absl::InvalidArgumentError("facts: gb is not a boolean");
    f.give_back = gb->get_bool();
  }
  if (o.contains("late")) {
    absl::StatusOr<int64_t> late = Int(o, "late");
    if (!late.ok()) return late.status();
    f.late_period_start = absl::FromUnixSeconds(*late);
  }
  if (const json::value* c = o.if_contains("cr")) {
    absl::StatusOr<engine::CreditsFacts> credits = CreditsOf(*c);
    if (!credits.ok()) return credits.status();
    f.credits = std::move(*credits);
    absl::StatusOr<int64_t> end = Int(o, "end");
    if (!end.ok()) return end.status();
    f.period_end = absl::FromUnixSeconds(*end);
  }
  if (absl::Status s = AddMessages(o, f); !s.ok()) return s;
  if (o.contains("limit")) return WithLimit(o, std::move(f));
  return f;
}

}  // namespace quotum::store::redis
