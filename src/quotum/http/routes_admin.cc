// Admin routes: tenants, API keys, limit overrides.
#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/errors.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/json_input.h"
#include "quotum/http/render.h"

namespace quotum::http {

void Api::CreateTenant(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  Fields f(body);
  ASSIGN_OR_REPLY(id, f.String("id", 64), c);
  ASSIGN_OR_REPLY(name, f.String("name", 200), c);
  ASSIGN_OR_REPLY(plan, f.String("plan", 64), c);
  ASSIGN_OR_REPLY(start, f.Time("subscription_start"), c);
  if (!id) {
    return c.respond(ErrorReply(400, "missing_field", "\"id\" is required."));
  }
  engine::TenantSpec spec{*id, name.value_or(""), plan.value_or(""), start};
  const Catalog* cat = &engine_->catalog();
  engine_->CreateTenant(std::move(spec), [cat, respond = std::move(c.respond)](
                                             absl::StatusOr<engine::CreatedTenant> r) mutable {
    if (!r.ok()) return respond(ReplyForStatus(r.status()));
    boost::json::object o;
    o["tenant"] = TenantJson(*cat, r->tenant);
    o["api_key"] = r->key.secret;
    o["key_id"] = r->key.key_id;
    respond(JsonReply(201, o));
  });
}

void Api::ListTenants(Call& c) {
  ASSIGN_OR_REPLY(tenants, engine_->ListTenants(), c);
  boost::json::array arr;
  for (const auto& t : tenants) arr.push_back(TenantJson(engine_->catalog(), t));
  boost::json::object o;
  o["tenants"] = std::move(arr);
  c.respond(JsonReply(200, o));
}

void Api::GetTenant(Call& c) {
  ASSIGN_OR_REPLY(t, engine_->GetTenant(c.params[0]), c);
  boost::json::object o;
  o["tenant"] = TenantJson(engine_->catalog(), t);
  c.respond(JsonReply(200, o));
}

void Api::CreateKey(Call& c) {
  engine_->CreateKey(c.params[0],
                     [respond = std::move(c.respond)](absl::StatusOr<engine::MintedKey> r) mutable {
                       if (!r.ok()) return respond(ReplyForStatus(r.status()));
                       boost::json::object o;
                       o["api_key"] = r->secret;
                       o["key_id"] = r->key_id;
                       respond(JsonReply(201, o));
                     });
}

void Api::RevokeKey(Call& c) {
  engine_->RevokeKey(c.params[0],
                     [respond = std::move(c.respond)](absl::StatusOr<std::string> r) mutable {
                       if (!r.ok()) return respond(ReplyForStatus(r.status()));
                       boost::json::object o;
                       o["key_id"] = *r;
                       o["revoked"] = true;
                       respond(JsonReply(200, o));
                     });
}

void Api::SetLimits(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  if (body.empty()) {
    return c.respond(ErrorReply(400, "missing_field",
                                "Send at least one meter: {\"messages_sent\": 200000}, or null to "
                                "go back to the plan's limit."));
  }
  Fields f(body);
  std::vector<std::pair<std::string, std::optional<uint64_t>>> limits;
  for (const auto& kv : body) {
    std::string meter(kv.key());
    ASSIGN_OR_REPLY(v, f.Count(meter), c);
    limits.emplace_back(meter, v);
  }
  const Catalog* cat = &engine_->catalog();
  engine_->SetLimits(
      c.params[0], std::move(limits),
      [cat, respond = std::move(c.respond)](absl::StatusOr<engine::TenantView> r) mutable {
        if (!r.ok()) return respond(ReplyForStatus(r.status()));
        boost::json::object o;
        o["tenant"] = TenantJson(*cat, *r);
        respond(JsonReply(200, o));
      });
}

namespace {

boost::json::object KeyLimitsJson(const engine::KeyLimitsView& v) {
  boost::json::object custom;
  if (v.custom.general) custom["general"] = *v.custom.general;
  if (v.custom.messages) custom["messages"] = *v.custom.messages;
  if (v.custom.sessions) custom["sessions"] = *v.custom.sessions;
  return boost::json::object{{"key_id", v.key_id},
                             {"tenant_id", v.tenant_id},
                             {"profile", v.profile},
                             {"rateLimits", boost::json::object{{"general", v.general},
                                                                {"messages", v.messages},
                                                                {"sessions", v.sessions}}},
                             {"custom", std::move(custom)}};
}

}  // namespace

void Api::SetKeyRateLimits(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  // Accept both the seed's flat body and {"rateLimits": {...}}.
  const boost::json::object* limits = &body;
  if (auto it = body.find("rateLimits"); it != body.end() && it->value().is_object()) {
    limits = &it->value().get_object();
  }
  engine::KeyRateLimits patch;
  Fields f(*limits);
  for (const auto& kv : *limits) {
    std::string_view k = kv.key();
    if (k != "general" && k != "messages" && k != "sessions") {
      return c.respond(ErrorReply(
          422, "unknown_category",
          Cat("Unknown rate-limit category \"", k, "\"; use general, messages, sessions.")));
    }
  }
  for (const char* name : {"general", "messages", "sessions"}) {
    ASSIGN_OR_REPLY(v, f.Count(name), c);
    if (v && (*v < 1 || *v > 1'000'000'000)) {
      return c.respond(ErrorReply(422, "invalid_limit",
                                  Cat("\"", name, "\" must be between 1 and 1000000000.")));
    }
    if (!v) continue;
    std::optional<uint32_t> value = static_cast<uint32_t>(*v);
    if (std::string_view(name) == "general") patch.general = value;
    if (std::string_view(name) == "messages") patch.messages = value;
    if (std::string_view(name) == "sessions") patch.sessions = value;
  }
  if (!patch.general && !patch.messages && !patch.sessions) {
    return c.respond(ErrorReply(400, "missing_field",
                                "Send at least one of general, messages, sessions, e.g. "
                                "{\"general\":500,\"messages\":100,\"sessions\":50}."));
  }
  engine_->SetKeyRateLimits(
      ToAbsl(c.params[0]), patch,
      [respond = std::move(c.respond)](absl::StatusOr<engine::KeyLimitsView> r) mutable {
        if (!r.ok()) return respond(ReplyForStatus(r.status()));
        respond(JsonReply(200, KeyLimitsJson(*r)));
      });
}

void Api::GetKeyRateLimits(Call& c) {
  ASSIGN_OR_REPLY(v, engine_->GetKeyRateLimits(ToAbsl(c.params[0])), c);
  c.respond(JsonReply(200, KeyLimitsJson(v)));
}

}  // namespace quotum::http
