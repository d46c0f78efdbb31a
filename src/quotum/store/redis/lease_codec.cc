#include "quotum/store/redis/lease_codec.h"

#include <boost/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/events.h"
#include "quotum/store/redis/json_fields.h"

namespace quotum::store::redis {
namespace {

namespace json = boost::json;

int64_t Millis(absl::Time t) { return absl::ToUnixMillis(t); }

absl::StatusOr<json::object> ObjectOf(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) {
    return absl::InvalidArgumentError(std::string(what) + ": not a JSON object");
  }
  return std::move(v.get_object());
}

// o[key] as an instant (Unix ms; lua's cjson may write a whole number as a double).
absl::StatusOr<absl::Time> Instant(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v && v->is_int64()) return absl::FromUnixMillis(v->get_int64());
  if (v && v->is_double()) return absl::FromUnixMillis(static_cast<int64_t>(v->get_double()));
  return absl::InvalidArgumentError("lease record: no time " + std::string(key));
}

}  // namespace

std::string EncodeSession(const engine::SessionRecord& s) {
  json::object o{{"p", s.phone},
                 {"s", s.status},
                 {"c", Millis(s.created_at)},
                 {"u", Millis(s.updated_at)},
                 {"h", Millis(s.last_heartbeat)}};
  if (s.first_working_at) o["f"] = Millis(*s.first_working_at);
  return json::serialize(o);
}

absl::StatusOr<engine::SessionRecord> DecodeSession(std::string_view tenant_id, std::string_view id,
                                                    std::string_view text) {
  absl::StatusOr<json::object> o = ObjectOf(text, "session record");
  if (!o.ok()) return o.status();
  absl::StatusOr<std::string> phone = TextField(*o, "p", "lease record"),
                              status = TextField(*o, "s", "lease record");
  absl::StatusOr<absl::Time> created = Instant(*o, "c"), updated = Instant(*o, "u"),
                             heartbeat = Instant(*o, "h");
  for (const absl::Status& s :
       {phone.status(), status.status(), created.status(), updated.status(), heartbeat.status()}) {
    if (!s.ok()) return s;
  }
  engine::SessionRecord r;
  r.tenant_id = std::string(tenant_id);
  r.id = std::string(id);
  r.phone = std::move(*phone);
  r.status = std::move(*status);
  r.created_at = *created;
  r.updated_at = *updated;
  r.last_heartbeat = *heartbeat;
  if (o->contains("f")) {
    absl::StatusOr<absl::Time> first = Instant(*o, "f");
    if (!first.ok()) return first.status();
    r.first_working_at = *first;
  }
  return r;
}

std::string EncodeGroup(const engine::GroupRecord& g) {
  return json::serialize(json::object{{"n", g.name}, {"c", Millis(g.created_at)}});
}

absl::StatusOr<engine::GroupRecord> DecodeGroup(std::string_view tenant_id, std::string_view id,
                                                std::string_view text) {
  absl::StatusOr<json::object> o = ObjectOf(text, "group record");
  if (!o.ok()) return o.status();
  absl::StatusOr<std::string> name = TextField(*o, "n", "lease record");
  absl::StatusOr<absl::Time> created = Instant(*o, "c");
  if (!name.ok()) return name.status();
  if (!created.ok()) return created.status();
  return engine::GroupRecord{std::string(tenant_id), std::string(id), std::move(*name), *created};
}

namespace {

absl::StatusOr<engine::LeaseChange> SessionChange(std::string_view tenant_id, std::string_view id,
                                                  std::string_view record, std::string_view event) {
  engine::LeaseChange c;
  absl::StatusOr<engine::SessionRecord> s = DecodeSession(tenant_id, id, record);
  if (!s.ok()) return s.status();
  c.session = std::move(*s);
  if (event.empty()) return c;
  if (event != "session.lease_expired") {
    return absl::InvalidArgumentError(absl::StrCat("lease change: unknown event ", ToAbsl(event)));
  }
  c.event = engine::EventRecord{
      c.session.tenant_id,
      std::string(event),
      c.session.id,
      absl::StrCat("no heartbeat since ", FormatRfc3339(c.session.last_heartbeat),
                   "; stopped counting toward sessions_active"),
      c.session.updated_at,
      engine::LeaseExpiredEventId(c.session.tenant_id, c.session.id, c.session.last_heartbeat),
      {}};
  return c;
}

}  // namespace

absl::StatusOr<engine::LeaseChange> DecodeLeaseChange(std::string_view tenant_id,
                                                      std::string_view kind, std::string_view id,
                                                      std::string_view record,
                                                      std::string_view event) {
  using Kind = engine::LeaseChange::Kind;
  engine::LeaseChange c;
  if (kind == "s") return SessionChange(tenant_id, id, record, event);
  if (kind == "sd") {
    c.kind = Kind::kSessionDeleted;
    c.session.tenant_id = std::string(tenant_id);
    c.session.id = std::string(id);
  } else if (kind == "g") {
    c.kind = Kind::kGroup;
    absl::StatusOr<engine::GroupRecord> g = DecodeGroup(tenant_id, id, record);
    if (!g.ok()) return g.status();
    c.group = std::move(*g);
  } else if (kind == "gd") {
    c.kind = Kind::kGroupDeleted;
    c.group.tenant_id = std::string(tenant_id);
    c.group.id = std::string(id);
  } else if (kind == "v") {
    c.kind = Kind::kGauge;
    c.gauge = engine::GaugeRecord{std::string(tenant_id), std::string(id), 0};
    if (!absl::SimpleAtoi(ToAbsl(record), &c.gauge.value)) {
      return absl::InvalidArgumentError("lease change: the gauge's value is not a number");
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat("lease change: unknown kind ", ToAbsl(kind)));
  }
  return c;
}

}  // namespace quotum::store::redis
