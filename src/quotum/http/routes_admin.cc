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
  ASSIGN_OR_REPLY(body, ParseObject(c.req.body()), c);
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
  boost::json::array arr;
  for (const auto& t : engine_->ListTenants()) arr.push_back(TenantJson(engine_->catalog(), t));
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
  ASSIGN_OR_REPLY(body, ParseObject(c.req.body()), c);
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

}  // namespace quotum::http
