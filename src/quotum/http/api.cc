#include "quotum/http/api.h"

#include <boost/url/parse.hpp>
#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/errors.h"
#include "quotum/http/json_output.h"
#include "quotum/http/render.h"
#include "quotum/http/request_checks.h"

namespace quotum::http {

namespace bhttp = boost::beast::http;
using bhttp::verb;

namespace {
// Paths quoted in 404 and 405 errors are cut to this many bytes.
constexpr size_t kMaxEchoedPath = 96;
// Threads of the read pool: reads wait on I/O, and SQLite serves them one at a
// time on its read connection. The probe pool has one.
constexpr size_t kReadThreads = 2;
}  // namespace

/// GET and HEAD change nothing.
bool ReadsOnly(const Request& req) {
  return req.method() == boost::beast::http::verb::get ||
         req.method() == boost::beast::http::verb::head;
}

std::string_view ApiKeyOf(const Request& req) {
  if (std::string_view bearer = BearerTokenOf(req); !bearer.empty()) return bearer;
  auto key = req["X-API-Key"];
  return std::string_view(key.data(), key.size());
}

// Messages: sends, receipts, the queue and scheduled and bulk sends.
void Api::RouteMessages() {
  Route(verb::post, "/api/v2/messages/send", Access::kTenantDecides, &Api::SendMessage);
  Route(verb::post, "/api/v2/messages/received", Access::kTenantDecides, &Api::ReceivedMessage);
  Route(verb::get, "/api/v2/messages/{id}", Access::kTenant, &Api::GetMessage, Runs::kReadPool);
  Route(verb::delete_, "/api/v2/messages/{id}", Access::kTenant, &Api::CancelMessage,
        Runs::kReadPoolWhenShared);
  Route(verb::get, "/api/v2/messages", Access::kTenant, &Api::ListMessages, Runs::kReadPool);
  Route(verb::post, "/api/v2/messages/schedule", Access::kTenant, &Api::ScheduleMessage,
        Runs::kReadPoolWhenShared);
  Route(verb::post, "/api/v2/messages/bulk", Access::kTenant, &Api::BulkSend,
        Runs::kReadPoolWhenShared);
}

// The subscription: plan changes, add-ons and top-ups.
void Api::RouteSubscription() {
  Route(verb::get, "/api/v2/subscription", Access::kTenant, &Api::GetSubscription, Runs::kReadPool);
  Route(verb::post, "/api/v2/subscription/preview", Access::kTenant, &Api::SubscriptionPreview,
        Runs::kReadPoolWhenShared);
  Route(verb::post, "/api/v2/subscription/change", Access::kTenant, &Api::SubscriptionChange,
        Runs::kReadPool);
  Route(verb::delete_, "/api/v2/subscription/pending", Access::kTenant, &Api::CancelPendingPlan,
        Runs::kReadPoolWhenShared);
  Route(verb::post, "/admin/tenants/{id}/plan", Access::kAdmin, &Api::AdminChangePlan,
        Runs::kReadPool);
  Route(verb::post, "/api/v2/addons", Access::kTenant, &Api::BuyAddon, Runs::kReadPool);
  Route(verb::get, "/api/v2/addons", Access::kTenant, &Api::ListAddons, Runs::kReadPoolWhenShared);
  Route(verb::delete_, "/api/v2/addons/{id}", Access::kTenant, &Api::CancelAddon,
        Runs::kReadPoolWhenShared);
  Route(verb::post, "/api/v2/topups", Access::kTenant, &Api::BuyTopup, Runs::kReadPool);
  Route(verb::get, "/api/v2/topups", Access::kTenant, &Api::ListTopups, Runs::kReadPoolWhenShared);
}

// Sessions, groups and subscribers: in memory embedded; in scale-out their
// leases are decided in Redis, on the read pool.
void Api::RouteSessions() {
  constexpr Runs kShared = Runs::kReadPoolWhenShared;
  Route(verb::post, "/api/v2/sessions", Access::kTenantDecides, &Api::CreateSession, kShared);
  Route(verb::get, "/api/v2/sessions", Access::kTenant, &Api::ListSessions, kShared);
  Route(verb::get, "/api/v2/sessions/{id}", Access::kTenant, &Api::GetSession, kShared);
  Route(verb::patch, "/api/v2/sessions/{id}", Access::kTenantDecides, &Api::UpdateSession, kShared);
  Route(verb::delete_, "/api/v2/sessions/{id}", Access::kTenantDecides, &Api::DeleteSession,
        kShared);
  Route(verb::get, "/api/v2/sessions/{id}/qr", Access::kTenantDecides, &Api::SessionQr, kShared);
  Route(verb::post, "/api/v2/sessions/{id}/heartbeat", Access::kTenantDecides, &Api::Heartbeat,
        kShared);
  Route(verb::post, "/api/v2/groups", Access::kTenantDecides, &Api::CreateGroup, kShared);
  Route(verb::get, "/api/v2/groups", Access::kTenant, &Api::ListGroups, kShared);
  Route(verb::delete_, "/api/v2/groups/{id}", Access::kTenantDecides, &Api::DeleteGroup, kShared);
  Route(verb::put, "/api/v2/subscribers/count", Access::kTenantDecides, &Api::SetSubscribers,
        kShared);
}

// Tenants, keys and their limits. Scale-out: most read the shared store, for a
// tenant or key another instance made.
void Api::RouteAdmin() {
  Route(verb::post, "/admin/tenants", Access::kAdmin, &Api::CreateTenant,
        Runs::kReadPoolWhenShared);
  Route(verb::get, "/admin/tenants", Access::kAdmin, &Api::ListTenants, Runs::kReadPoolWhenShared);
  Route(verb::get, "/admin/tenants/{id}", Access::kAdmin, &Api::GetTenant,
        Runs::kReadPoolWhenShared);
  Route(verb::get, "/admin/risk", Access::kAdmin, &Api::AdminRisk, Runs::kReadPool);
  Route(verb::post, "/admin/tenants/{id}/keys", Access::kAdmin, &Api::CreateKey,
        Runs::kReadPoolWhenShared);
  Route(verb::put, "/admin/tenants/{id}/limits", Access::kAdmin, &Api::SetLimits, Runs::kReadPool);
  Route(verb::delete_, "/admin/api-keys/{key_id}", Access::kAdmin, &Api::RevokeKey,
        Runs::kReadPoolWhenShared);
  Route(verb::put, "/admin/api-keys/{key_id}/rate-limits", Access::kAdmin, &Api::SetKeyRateLimits,
        Runs::kReadPoolWhenShared);
  Route(verb::get, "/admin/api-keys/{key_id}/rate-limits", Access::kAdmin, &Api::GetKeyRateLimits,
        Runs::kReadPoolWhenShared);
}

Api::Api(engine::Engine* engine, Options options)
    : engine_(engine),
      opts_(std::move(options)),
      admin_key_hash_(engine::HashSecret(opts_.admin_key)) {
  if (engine_) {
    read_pool_ = std::make_unique<TaskPool>(kReadThreads, "quotum-read");
    probe_pool_ = std::make_unique<TaskPool>(2, "quotum-probe");
    if (engine_->reads_keys_from_store()) key_pool_ = std::make_unique<TaskPool>(2, "quotum-keys");
    streams_ = std::make_unique<UsageStreams>(
        &engine_->catalog(),
        [engine](const engine::Principal& who) { return engine->ReadCounters(who); },
        opts_.streams);
  }
  Route(verb::get, "/healthz", Access::kPublic, &Api::Healthz);
  Route(verb::get, "/readyz", Access::kPublic, &Api::Readyz, Runs::kProbePool);

  RouteAdmin();

  Route(verb::post, "/api/v2/quota/check", Access::kTenantDecides, &Api::QuotaCheck);
  Route(verb::post, "/api/v2/quota/consume", Access::kTenantDecides, &Api::QuotaConsume);
  Route(verb::post, "/api/v2/quota/reserve", Access::kTenantDecides, &Api::QuotaReserve);
  Route(verb::post, "/api/v2/quota/commit", Access::kTenantDecides, &Api::QuotaCommit);
  Route(verb::post, "/api/v2/quota/release", Access::kTenantDecides, &Api::QuotaRelease);
  // A batch is admitted by the general rule once; then each event is decided alone.
  Route(verb::post, "/api/v2/events", Access::kTenant, &Api::Events, Runs::kReadPoolWhenShared);
  RouteMessages();
  Route(verb::post, "/api/v2/chatbot/trigger", Access::kTenantDecides, &Api::ChatbotTrigger);

  Route(verb::get, "/api/v2/usage/current", Access::kTenant, &Api::UsageCurrent, Runs::kReadPool);
  Route(verb::get, "/api/v2/usage/daily", Access::kTenant, &Api::UsageDaily, Runs::kReadPool);
  Route(verb::get, "/api/v2/usage/history", Access::kTenant, &Api::UsageHistory, Runs::kReadPool);
  Route(verb::get, "/api/v2/usage/channels", Access::kTenant, &Api::UsageChannels, Runs::kReadPool);
  Route(verb::get, "/api/v2/usage/hourly", Access::kTenant, &Api::UsageHourly, Runs::kReadPool);
  Route(verb::get, "/api/v2/usage/export", Access::kTenant, &Api::UsageExport, Runs::kReadPool);
  Route(verb::get, "/api/v2/usage/stream", Access::kTenant, &Api::UsageStream,
        Runs::kReadPoolWhenShared);
  Route(verb::get, "/api/v2/plans", Access::kTenant, &Api::Plans, Runs::kReadPoolWhenShared);
  Route(verb::get, "/api/v2/events", Access::kTenant, &Api::ListEvents, Runs::kReadPool);
  Route(verb::get, "/api/v2/alerts", Access::kTenant, &Api::ListAlerts, Runs::kReadPool);
  Route(verb::post, "/api/v2/webhooks", Access::kTenant, &Api::CreateWebhook, Runs::kReadPool);
  Route(verb::get, "/api/v2/webhooks", Access::kTenant, &Api::ListWebhooks, Runs::kReadPool);
  Route(verb::delete_, "/api/v2/webhooks/{id}", Access::kTenant, &Api::DeleteWebhook,
        Runs::kReadPool);
  Route(verb::get, "/api/v2/webhooks/{id}/deliveries", Access::kTenant, &Api::WebhookDeliveries,
        Runs::kReadPool);
  Route(verb::post, "/admin/outbox/{id}/retry", Access::kAdmin, &Api::RetryDelivery,
        Runs::kReadPool);
  Route(verb::get, "/admin/reconcile", Access::kAdmin, &Api::GetReconcile, Runs::kReadPool);
  Route(verb::post, "/admin/reconcile", Access::kAdmin, &Api::RunReconcile, Runs::kReadPool);
  RouteSubscription();

  RouteSessions();

  Route(verb::get, "/metrics", Access::kPublic, &Api::Metrics, Runs::kProbePool);
  Route(verb::get, "/", Access::kPublic, &Api::DashboardPage);
  Route(verb::get, "/assets/{file}", Access::kPublic, &Api::DashboardAsset);
  Route(verb::get, "/openapi.yaml", Access::kPublic, &Api::ApiDescription);

  for (const auto& r : router_.routes()) {
    auto m = std::make_unique<RouteMetrics>();
    m->route = r.pattern;
    route_metrics_.push_back(std::move(m));
  }
  auto unmatched = std::make_unique<RouteMetrics>();
  unmatched->route = "unmatched";
  route_metrics_.push_back(std::move(unmatched));
}

void Api::CountRequest(RouteMetrics& m, unsigned status, double seconds) {
  auto labels = [&] { return std::vector<std::string>{m.route, std::to_string(status)}; };
  if (status >= m.by_status.size()) {
    const auto l = labels();
    stats_.duration.Observe(l, seconds);
    return stats_.requests.Add(l);
  }
  // Children are never removed, so a racing first use stores the same pointer.
  std::atomic<uint64_t>* c = m.by_status[status].load(std::memory_order_acquire);
  obs::HistogramFamily::Child* h = m.duration_by_status[status].load(std::memory_order_acquire);
  if (!c || !h) {
    const auto l = labels();
    c = stats_.requests.Child(l);
    h = stats_.duration.GetChild(l);
    m.by_status[status].store(c, std::memory_order_release);
    m.duration_by_status[status].store(h, std::memory_order_release);
  }
  c->fetch_add(1, std::memory_order_relaxed);
  stats_.duration.ObserveChild(h, seconds);
}

void Api::Route(verb method, std::string_view pattern, Access access, void (Api::*fn)(Call&),
                Runs runs) {
  router_.Add(method, pattern, access, fn);
  const bool shared = engine_ && engine_->decides_concurrently();
  if (runs == Runs::kReadPoolWhenShared) runs = shared ? Runs::kReadPool : Runs::kInline;
  runs_of_route_.push_back(runs);
}

bool Api::IsAdmin(std::string_view key) const {
  return !key.empty() &&
         engine::ConstantTimeEquals(engine::HashSecret(ToAbsl(key)), admin_key_hash_);
}

void Api::Handle(const Request& req, Respond respond) {
  auto target = boost::urls::parse_origin_form(req.target());
  if (!target) {
    return respond(ErrorReply(400, "bad_request", "The request target is not a valid path."));
  }
  // The decoded path; decoding (and its copy) only when it has escapes.
  std::string decoded;
  const auto encoded = target->encoded_path();
  std::string_view path(encoded.data(), encoded.size());
  if (path.find('%') != std::string_view::npos) {
    decoded = target->path();
    path = decoded;
  }
  auto match = router_.Find(req.method(), path);
  // Count and time every answer by route pattern (bounded label values).
  RouteMetrics* metrics =
      route_metrics_[match.route ? match.route->index : route_metrics_.size() - 1].get();
  respond = [this, metrics, started = std::chrono::steady_clock::now(),
             inner = std::move(respond)](Reply r) mutable {
    CountRequest(*metrics, r.status,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    inner(std::move(r));
  };
  if (auto refused = CheckRequest(req)) return respond(*std::move(refused));
  if (!match.route) {
    const std::string shown = SafeText(path, kMaxEchoedPath);
    if (!match.allow.empty()) {
      Reply r = ErrorReply(405, "method_not_allowed",
                           Cat(std::string_view(req.method_string()), " is not allowed on ", shown,
                               "; allowed: ", match.allow, "."));
      r.Header("Allow", match.allow);
      return respond(std::move(r));
    }
    return respond(ErrorReply(404, "not_found", Cat("No route for ", shown, ".")));
  }
  Call call{req, std::move(match.params), target->params(), {}, std::move(respond)};
  const auto& route = *match.route;
  TaskPool* pool = PoolFor(runs_of_route_[route.index]);
  if (pool == nullptr) pool = PoolForKeyOf(req, route.access, &call.key_hash);
  if (pool != nullptr) {
    call.pooled = true;
    // The request stays alive until respond is called (the connection waits for it).
    return pool->Run([this, &route, call = std::move(call)]() mutable { Dispatch(route, call); });
  }
  Dispatch(route, call);
}

TaskPool* Api::PoolForKeyOf(const Request& req, Access access, std::string* key_hash) {
  if (access == Access::kPublic || key_pool_ == nullptr) return nullptr;
  const std::string_view key = ApiKeyOf(req);
  switch (engine_->PlanKeyLookup(ToAbsl(key), key_hash)) {
    case engine::Engine::KeyLookup::kInMemory:
      return nullptr;
    case engine::Engine::KeyLookup::kInMemoryRefreshDue:
      key_pool_->Run([engine = engine_, key = std::string(key)] { engine->RefreshKey(key); });
      return nullptr;
    case engine::Engine::KeyLookup::kReadsStore:
      return IsAdmin(key) ? nullptr : key_pool_.get();  // the admin key is no store's
  }
  return nullptr;
}

void Api::Dispatch(const Router<void (Api::*)(Call&)>::Route& route, Call& call) {
  const Request& req = call.req;
  const std::string_view key = ApiKeyOf(req);
  switch (route.access) {
    case Access::kPublic:
      break;
    case Access::kAdmin:
      if (!IsAdmin(key)) {
        if (key.empty()) {
          return call.respond(ErrorReply(401, "unauthorized",
                                         "Missing admin key: send it in the X-API-Key header."));
        }
        // A tenant's key is known but not allowed here; any other key is not known.
        if (engine_->Authenticate(ToAbsl(key), call.pooled, call.key_hash).ok()) {
          return call.respond(
              ErrorReply(403, "forbidden", "This route needs the admin key; a tenant key is not."));
        }
        return call.respond(ErrorReply(401, "unauthorized", "The admin key is not valid."));
      }
      break;
    case Access::kTenant:
    case Access::kTenantDecides: {
      if (!req[kActAsTenantHeader].empty()) {
        if (!AdmitAdminAsTenant(req, key, route.access, call)) return;
        break;
      }
      auto who = engine_->Authenticate(ToAbsl(key), call.pooled, call.key_hash);
      if (!who.ok()) return call.respond(ReplyForStatus(who.status()));
      call.who = *who;
      if (route.access == Access::kTenantDecides) break;
      // Plain routes: the general rule alone decides; its headers go on every reply.
      if (!AdmitPlainRoute(req, call)) return;
      break;
    }
  }
  (this->*(route.handler))(call);
}

bool Api::AdmitAdminAsTenant(const Request& req, std::string_view key, Access access, Call& call) {
  if (!IsAdmin(key)) {
    if (key.empty() || !engine_->Authenticate(ToAbsl(key), call.pooled, call.key_hash).ok()) {
      call.respond(ErrorReply(401, "unauthorized",
                              "X-Quotum-Tenant needs the admin key in the X-API-Key header."));
    } else {
      call.respond(ErrorReply(403, "forbidden",
                              "X-Quotum-Tenant is for the admin key; a tenant key reads its own "
                              "tenant without it."));
    }
    return false;
  }
  if (!ReadsOnly(req) || access != Access::kTenant) {
    call.respond(ErrorReply(403, "read_only",
                            "The admin reads as a tenant only: X-Quotum-Tenant is allowed on GET "
                            "routes that change nothing."));
    return false;
  }
  const auto id = req[kActAsTenantHeader];
  absl::StatusOr<engine::Principal> who =
      engine_->ActAsTenant(absl::string_view(id.data(), id.size()));
  if (!who.ok()) {
    call.respond(ReplyForStatus(who.status()));
    return false;
  }
  call.who = *who;  // not held to the general rule: that rule is the tenant's keys'
  return true;
}

bool Api::AdmitPlainRoute(const Request& req, Call& call) {
  absl::StatusOr<engine::Decision> admitted = engine_->AdmitRequest(call.who);
  if (!admitted.ok() && ReadsOnly(req) &&
      admitted.status().code() == absl::StatusCode::kUnavailable) {
    // Scale-out mode with Redis away: reads still answer (from the
    // aggregates); the general rule cannot be decided until it is back.
    return true;
  }
  if (!admitted.ok()) {
    call.respond(ReplyForStatus(admitted.status()));
    return false;
  }
  engine::Decision admission = std::move(*admitted);
  const Clock* clock = &engine_->clock();
  if (!admission.allowed) {
    call.respond(DenialReply(admission, clock->Now()));
    return false;
  }
  call.respond = [admission = std::move(admission), clock,
                  inner = std::move(call.respond)](Reply r) mutable {
    AddDecisionHeaders(r, admission, clock->Now());
    inner(std::move(r));
  };
  return true;
}

void Api::Healthz(Call& c) {
  boost::json::object o;
  o["status"] = "ok";
  c.respond(JsonReply(200, o));
}

void Api::Readyz(Call& c) {
  if (draining_.load()) {
    return c.respond(ErrorReply(503, "draining", "The server is shutting down."));
  }
  boost::json::object deps;
  std::string down;
  for (const auto& [name, status] : engine_->Dependencies()) {
    deps[name] = status.ok() ? "up" : "down";
    if (!status.ok() && down.empty()) down = Cat(name, " is unavailable: ", status.message());
  }
  boost::json::object o;
  o["dependencies"] = std::move(deps);
  if (!down.empty()) {
    o["success"] = false;
    o["code"] = "not_ready";
    o["error"] = SafeText(down, 1024);
    return c.respond(JsonReply(503, o));
  }
  o["status"] = "ready";
  c.respond(JsonReply(200, o));
}

void Api::Metrics(Call& c) {
  const engine::EngineStats& es = engine_->stats();
  std::string out;
  stats_.requests.Render(out);
  stats_.duration.Render(out);
  es.decisions.Render(out);
  es.commit_seconds.Render(out);
  es.commit_batch.Render(out);
  es.commit_failures.Render(out);
  es.journal_writes.Render(out);
  es.journal_records.Render(out);
  es.lease_expiries.Render(out);
  es.webhook_attempts.Render(out);
  es.deliveries.Render(out);
  es.given_back.Render(out);
  es.queue_releases.Render(out);
  es.relay_failures.Render(out);
  es.emails.Render(out);
  es.reconcile_runs.Render(out);
  es.reconcile_flagged.Render(out);
  if (absl::StatusOr<uint64_t> backlog = engine_->OutboxBacklog(); backlog.ok()) {
    obs::RenderGauge(out, "quotum_outbox_backlog",
                     "Events not yet handed to webhooks plus deliveries pending (dead ones are "
                     "not counted).",
                     static_cast<double>(*backlog));
  }
  for (const obs::CounterFamily* scale_out :
       {&es.facts_applied, &es.facts_sweeps, &es.facts_drain_failures, &es.fail_open_decisions,
        &es.fail_open_reconciled}) {
    scale_out->Render(out);
  }
  obs::RenderGauge(out, "quotum_commit_queue_depth", "Requests waiting for the next group commit.",
                   static_cast<double>(engine_->commit_queue_depth()));
  Reply r;
  r.status = 200;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = std::move(out);
  c.respond(std::move(r));
}

}  // namespace quotum::http
