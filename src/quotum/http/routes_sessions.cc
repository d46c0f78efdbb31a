// Sessions, groups and the subscribers gauge: concurrent limits as leases.
#include "quotum/core/string_views.h"
#include "quotum/engine/errors.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/json_input.h"
#include "quotum/http/render.h"

namespace quotum::http {
namespace {

boost::json::value TierJson(const std::optional<TierView>& t) {
  if (!t) return nullptr;
  boost::json::object o{{"level", t->level},
                        {"limit", t->limit ? boost::json::value(*t->limit) : nullptr},
                        {"used_24h", t->used_24h},
                        {"unique_7d", t->unique_7d}};
  if (t->has_next) {
    o["next"] = boost::json::object{
        {"limit", t->next_limit ? boost::json::value(*t->next_limit) : nullptr},
        {"needed", t->needed},
        {"at", t->next_at_ms
                   ? boost::json::value(FormatRfc3339(absl::FromUnixMillis(*t->next_at_ms)))
                   : nullptr}};
  } else {
    o["next"] = nullptr;
  }
  return o;
}

boost::json::object SessionJson(const engine::SessionView& s) {
  boost::json::object o;
  o["id"] = s.id;
  o["phone"] = s.phone;
  o["status"] = s.status;
  o["created_at"] = FormatRfc3339(s.created_at);
  o["updated_at"] = FormatRfc3339(s.updated_at);
  o["first_working_at"] = TimeOrNull(s.first_working_at);
  o["last_heartbeat"] = FormatRfc3339(s.last_heartbeat);
  o["lease_expires_at"] = TimeOrNull(s.lease_expires_at);
  if (s.warmup_cap) {
    o["warmup"] = boost::json::object{{"cap_today", *s.warmup_cap}, {"sent_today", s.warmup_sent}};
  } else {
    o["warmup"] = nullptr;
  }
  o["messaging_tier"] = TierJson(s.tier);
  return o;
}

boost::json::object GroupJson(const engine::GroupView& g) {
  return boost::json::object{
      {"id", g.id}, {"name", g.name}, {"created_at", FormatRfc3339(g.created_at)}};
}

// Completion for an Admitted<T>: an error, a 429 for a refused decision, or
// `status` with render(value) and the decision's rate-limit headers.
template <typename T, typename Render>
engine::Engine::Callback<engine::Admitted<T>> Answer(const Clock* clock, Respond respond,
                                                     unsigned status, Render render) {
  return [clock, status, render,
          respond = std::move(respond)](absl::StatusOr<engine::Admitted<T>> r) mutable {
    if (!r.ok()) return respond(ReplyForStatus(r.status()));
    const absl::Time now = clock->Now();
    if (!r->decision.allowed) return respond(DenialReply(r->decision, now));
    Reply reply = JsonReply(status, render(*r->value));
    AddDecisionHeaders(reply, r->decision, now);
    respond(std::move(reply));
  };
}

}  // namespace

void Api::CreateSession(Call& c) {
  ASSIGN_OR_REPLY(body,
                  c.req.body().empty() ? absl::StatusOr<boost::json::object>(boost::json::object())
                                       : ParseObject(c.req.body()),
                  c);
  Fields f(body);
  ASSIGN_OR_REPLY(id, f.String("id", 64), c);
  ASSIGN_OR_REPLY(phone, f.String("phone", 32), c);
  engine_->CreateSession(
      c.who, id.value_or(""), phone.value_or(""),
      Answer<engine::SessionView>(&engine_->clock(), std::move(c.respond), 201, SessionJson));
}

void Api::ListSessions(Call& c) {
  ASSIGN_OR_REPLY(sessions, engine_->ListSessions(c.who), c);
  boost::json::array arr;
  for (const auto& s : sessions) arr.push_back(SessionJson(s));
  c.respond(JsonReply(200, boost::json::object{{"sessions", std::move(arr)}}));
}

void Api::GetSession(Call& c) {
  ASSIGN_OR_REPLY(s, engine_->GetSession(c.who, ToAbsl(c.params[0])), c);
  c.respond(JsonReply(200, SessionJson(s)));
}

void Api::UpdateSession(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  ASSIGN_OR_REPLY(status, Fields(body).String("status", 32), c);
  if (!status) {
    return c.respond(ErrorReply(400, "missing_field",
                                "\"status\" is required: starting, scan_qr, working, stopped or "
                                "failed."));
  }
  engine_->UpdateSession(
      c.who, c.params[0], *status,
      Answer<engine::SessionView>(&engine_->clock(), std::move(c.respond), 200, SessionJson));
}

void Api::DeleteSession(Call& c) {
  engine_->DeleteSession(
      c.who, c.params[0],
      Answer<engine::SessionView>(&engine_->clock(), std::move(c.respond), 200, SessionJson));
}

void Api::Heartbeat(Call& c) {
  engine_->Heartbeat(
      c.who, c.params[0],
      Answer<engine::SessionView>(&engine_->clock(), std::move(c.respond), 200, SessionJson));
}

void Api::SessionQr(Call& c) {
  auto r = engine_->PollQr(c.who, ToAbsl(c.params[0]));
  // Quotum gates QR polling; the QR image itself comes from the session provider.
  Answer<engine::SessionView>(
      &engine_->clock(), std::move(c.respond), 200, [](const engine::SessionView& s) {
        boost::json::object o{{"session_id", s.id}, {"status", s.status}, {"qr", nullptr}};
        return o;
      })(std::move(r));
}

void Api::CreateGroup(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  Fields f(body);
  ASSIGN_OR_REPLY(id, f.String("id", 64), c);
  ASSIGN_OR_REPLY(name, f.String("name", 200), c);
  if (!id) return c.respond(ErrorReply(400, "missing_field", "\"id\" is required."));
  engine_->CreateGroup(
      c.who, *id, name.value_or(*id),
      Answer<engine::GroupView>(&engine_->clock(), std::move(c.respond), 201, GroupJson));
}

void Api::ListGroups(Call& c) {
  ASSIGN_OR_REPLY(groups, engine_->ListGroups(c.who), c);
  boost::json::array arr;
  for (const auto& g : groups) arr.push_back(GroupJson(g));
  c.respond(JsonReply(200, boost::json::object{{"groups", std::move(arr)}}));
}

void Api::DeleteGroup(Call& c) {
  engine_->DeleteGroup(
      c.who, c.params[0],
      Answer<engine::GroupView>(&engine_->clock(), std::move(c.respond), 200, GroupJson));
}

void Api::SetSubscribers(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  ASSIGN_OR_REPLY(count, Fields(body).Count("count"), c);
  if (!count) return c.respond(ErrorReply(400, "missing_field", "\"count\" is required."));
  const Clock* clock = &engine_->clock();
  engine_->SetSubscribers(
      c.who, *count,
      [clock, respond = std::move(c.respond)](absl::StatusOr<engine::Decision> r) mutable {
        if (!r.ok()) return respond(ReplyForStatus(r.status()));
        const absl::Time now = clock->Now();
        if (!r->allowed) return respond(DenialReply(*r, now));
        boost::json::object o{{"subscribers", r->consumed},
                              {"limit", OptionalNumber(r->limit)},
                              {"remaining", r->limit ? boost::json::value(r->remaining)
                                                     : boost::json::value(nullptr)}};
        Reply reply = JsonReply(200, o);
        AddDecisionHeaders(reply, *r, now);
        respond(std::move(reply));
      });
}

void Api::ListEvents(Call& c) {
  ASSIGN_OR_REPLY(events, engine_->Events(c.who, 100), c);
  boost::json::array arr;
  for (const auto& e : events) {
    arr.push_back(boost::json::object{{"id", e.id},
                                      {"type", e.type},
                                      {"subject", e.subject},
                                      {"detail", e.detail},
                                      {"at", FormatRfc3339(e.at)}});
  }
  c.respond(JsonReply(200, boost::json::object{{"events", std::move(arr)}}));
}

}  // namespace quotum::http
