#pragma once

#include <array>
#include <atomic>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/url/params_view.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quotum/base/task_pool.h"
#include "quotum/engine/engine.h"
#include "quotum/http/http_stats.h"
#include "quotum/http/reply.h"
#include "quotum/http/router.h"
#include "quotum/http/server.h"
#include "quotum/http/usage_streams.h"

namespace quotum::http {

struct ReportRange;
}  // namespace quotum::http
namespace quotum::report {
struct UsageStatement;
}  // namespace quotum::report
namespace quotum::http {

/// The request header with which the admin key reads as a tenant.
inline constexpr std::string_view kActAsTenantHeader = "X-Quotum-Tenant";

/// One routed request as seen by a handler.
struct Call {
  const Request& req;
  std::vector<std::string> params;  ///< path parameters in pattern order
  boost::urls::params_view query;
  engine::Principal who;  ///< set on tenant routes (no key_id: the admin as a tenant)
  Respond respond;
  /// Handled on a pool, not on an I/O thread: authentication may read the
  /// shared store (Engine::Authenticate's `may_read_store`).
  bool pooled = false;
  /// The API key's hash when Api::PoolForKeyOf took it (scale-out), passed to
  /// Engine::Authenticate so that it is not taken twice; empty otherwise.
  std::string key_hash;
};

/// Where a route runs from authentication on: its admission and its handler.
enum class Runs : uint8_t {
  /// On the I/O thread that read the request: in memory in both modes (in
  /// scale-out, a request whose key must be read from PostgreSQL moves to the
  /// key pool: Api::PoolForKeyOf).
  kInline,
  /// On the read pool: the handler reads the cold store (SQLite, PostgreSQL).
  kReadPool,
  /// On the read pool in scale-out, where its admission or its handler waits
  /// on Redis or PostgreSQL; inline on the embedded store.
  kReadPoolWhenShared,
  /// On two threads of their own: the readiness probe and the metrics
  /// scrape, which must not queue behind the read pool's work.
  kProbePool,
};

/// The HTTP API: routing, authentication, and the mapping between JSON and
/// the engine's use cases. Talks to the engine only.
class Api {
 public:
  struct Options {
    std::string admin_key;
    /// Loopback and private hosts webhooks may target ([webhooks] allow_hosts).
    std::vector<std::string> webhook_allow_hosts;
    /// [email] is configured: mailto: webhooks are accepted.
    bool email_enabled = false;
    /// The caps and pace of GET /api/v2/usage/stream.
    StreamLimits streams;
  };
  Api(engine::Engine* engine, Options options);

  /// Entry point for the server.
  void Handle(const Request& req, Respond respond);
  /// From now on /readyz answers 503 (the server is draining).
  /// The usage streams end (their clients reconnect elsewhere).
  void BeginDrain() {
    draining_.store(true);
    if (streams_) streams_->Stop();
  }
  /// Runs what the pools hold and stops them; later calls run inline. Call
  /// after the server has stopped and before the engine stops, so that no
  /// pooled handler outlives either. The pools themselves live until ~Api:
  /// a thread the server does not own (the Redis pipeline's, the engine's
  /// blocking pool) may still hand one a task, which then runs inline.
  void StopPools() {
    for (TaskPool* pool : {key_pool_.get(), read_pool_.get(), probe_pool_.get()}) {
      if (pool != nullptr) pool->Stop();
    }
  }

  struct RouteInfo {
    boost::beast::http::verb method;
    std::string pattern;
    Access access;
  };
  /// Every route in matching order. Reads only the table the constructor
  /// built, so `Api(nullptr, {})` may list them.
  std::vector<RouteInfo> Routes() const {
    std::vector<RouteInfo> out;
    for (const auto& r : router_.routes()) out.push_back({r.method, r.pattern, r.access});
    return out;
  }

 private:
  /// Decides the general rule for a plain tenant route and wraps call.respond
  /// to add its headers; false when it has answered (refused or failed).
  bool AdmitPlainRoute(const Request& req, Call& call);
  /// The admin key with X-Quotum-Tenant on a tenant route: sets call.who to
  /// that tenant for a GET of a plain route; false when it has answered
  /// (401 without the admin key, 403 read_only otherwise, 404 for no such tenant).
  bool AdmitAdminAsTenant(const Request& req, std::string_view key, Access access, Call& call);
  using Handler = std::function<void(Api&, Call&)>;
  /// Routes the subscription's endpoints (in the constructor's order).
  void RouteAdmin();
  void RouteSubscription();
  void RouteMessages();
  void RouteSessions();
  void Route(boost::beast::http::verb method, std::string_view pattern, Access access,
             void (Api::*fn)(Call&), Runs runs = Runs::kInline);
  /// Authenticates and admits a routed call, then runs its handler.
  void Dispatch(const Router<void (Api::*)(Call&)>::Route& route, Call& call);

  // ops
  void Healthz(Call& c);
  void Readyz(Call& c);
  // admin (routes_admin.cc)
  void CreateTenant(Call& c);
  void ListTenants(Call& c);
  void GetTenant(Call& c);
  void CreateKey(Call& c);
  void RevokeKey(Call& c);
  void SetLimits(Call& c);
  // metering (routes_metering.cc)
  void QuotaCheck(Call& c);
  void QuotaConsume(Call& c);
  void Events(Call& c);
  void SendMessage(Call& c);
  void ReceivedMessage(Call& c);
  // messages and the queue (routes_messages.cc)
  void GetMessage(Call& c);
  void ScheduleMessage(Call& c);
  void CancelMessage(Call& c);
  void ListMessages(Call& c);
  /// A bulk send's recipients and mode (routes_bulk.cc).
  struct BulkPlan {
    std::vector<std::pair<size_t, std::string>> valid;  ///< (index, number)
    boost::json::array invalid;                         ///< their rejections
    bool queue = false;
    std::string idempotency_key;
  };
  void BulkSend(Call& c);
  /// Answers a bulk's decision, queueing the whole bulk first when nothing
  /// was admitted in queue mode.
  void FinishBulk(Respond respond, const engine::Principal& who, const BulkPlan& plan,
                  std::vector<engine::MessageRecord> messages, const engine::Decision& d);
  Reply BulkReply(const BulkPlan& plan, const std::vector<engine::MessageRecord>& messages,
                  size_t admitted, const engine::Decision& d) const;
  /// A send refused at a limit whose on_limit is "queue": held (202).
  void QueueRefusedSend(Respond respond, const engine::Principal& who, engine::HeldSend send,
                        const engine::Decision& refused);
  /// QueueRefusedSend's hold, once no earlier attempt is found to have queued it.
  void HoldRefusedSend(engine::Engine::Callback<std::vector<engine::MessageRecord>> held,
                       const engine::Principal& who, engine::HeldSend send,
                       const engine::Decision& refused);
  void ChatbotTrigger(Call& c);
  // reservations (routes_reservations.cc)
  void QuotaReserve(Call& c);
  void QuotaCommit(Call& c);
  void QuotaRelease(Call& c);
  // usage (routes_usage.cc)
  void UsageCurrent(Call& c);
  void UsageDaily(Call& c);
  void UsageHistory(Call& c);
  void UsageChannels(Call& c);
  void UsageHourly(Call& c);
  /// GET /admin/risk: the tenants closest to their limits (routes_risk.cc).
  void AdminRisk(Call& c);
  /// GET /api/v2/usage/stream: Server-Sent Events of the tenant's usage (usage_streams.h).
  void UsageStream(Call& c);
  // exports (routes_export.cc)
  void UsageExport(Call& c);
  void ExportCsv(Call& c, const ReportRange& range);
  void ExportPdf(Call& c, const ReportRange& range);
  /// The PDF statement's contents: the current period's totals, and the
  /// daily series and channel table of `range`.
  absl::StatusOr<report::UsageStatement> BuildStatement(const engine::Principal& who,
                                                        const ReportRange& range);
  /// Today's UTC date on the engine's clock.
  absl::CivilDay Today() const;
  void Plans(Call& c);
  void ListEvents(Call& c);
  // alerts and webhooks (routes_alerts.cc)
  void ListAlerts(Call& c);
  void CreateWebhook(Call& c);
  void ListWebhooks(Call& c);
  void DeleteWebhook(Call& c);
  void WebhookDeliveries(Call& c);
  void RetryDelivery(Call& c);
  // reconciliation (routes_reconcile.cc)
  void GetReconcile(Call& c);
  void RunReconcile(Call& c);
  /// A webhook URL this server can deliver to: http(s) under the target
  /// policy, or mailto: when e-mail is configured (422 otherwise).
  absl::Status CheckWebhookUrl(const std::string& url) const;
  // the subscription (routes_subscription.cc)
  void SubscriptionPreview(Call& c);
  void SubscriptionChange(Call& c);
  void CancelPendingPlan(Call& c);
  void GetSubscription(Call& c);
  void AdminChangePlan(Call& c);
  void BuyAddon(Call& c);
  void ListAddons(Call& c);
  void BuyTopup(Call& c);
  void ListTopups(Call& c);
  void CancelAddon(Call& c);
  // sessions, groups, subscribers (routes_sessions.cc)
  void CreateSession(Call& c);
  void ListSessions(Call& c);
  void GetSession(Call& c);
  void UpdateSession(Call& c);
  void DeleteSession(Call& c);
  void SessionQr(Call& c);
  void Heartbeat(Call& c);
  void CreateGroup(Call& c);
  void ListGroups(Call& c);
  void DeleteGroup(Call& c);
  void SetSubscribers(Call& c);
  // admin rate limits (routes_admin.cc)
  void SetKeyRateLimits(Call& c);
  void GetKeyRateLimits(Call& c);
  // ops
  void Metrics(Call& c);
  // the dashboard's page and built files (routes_web.cc)
  void DashboardPage(Call& c);
  void DashboardAsset(Call& c);
  // docs/openapi.yaml, the API's OpenAPI description (routes_web.cc)
  void ApiDescription(Call& c);

  /// Adds a route's own fields to an allowed decision's JSON.
  using Decorate = std::function<void(boost::json::object&, const engine::Decision&)>;
  /// Runs one metering request and answers with its decision (200/429).
  void Meter(Call& c, engine::MeterRequest req, Decorate decorate = {});
  /// The answer to a metering decision: 200 (decorated), 429, or the error's.
  static Reply DecisionReply(const Clock& clock, absl::StatusOr<engine::Decision> r,
                             const Decorate& decorate);
  bool IsAdmin(std::string_view key) const;

  engine::Engine* engine_;
  Options opts_;
  std::atomic<bool> draining_{false};
  std::string admin_key_hash_;
  /// Null without an engine (Api(nullptr, {}) lists routes only).
  std::unique_ptr<UsageStreams> streams_;
  Router<void (Api::*)(Call&)> router_;
  /// Per route: where it runs, with this backend (kReadPoolWhenShared resolved).
  std::vector<Runs> runs_of_route_;
  /// The key pool when authenticating `req` on a route of `access` would
  /// read the shared store (see Engine::PlanKeyLookup); null otherwise. A
  /// key whose check is due soon gets its refresh queued on the key pool.
  TaskPool* PoolForKeyOf(const Request& req, Access access, std::string* key_hash);
  /// The pool of `runs`, or null to run inline (a stopped pool runs inline too).
  TaskPool* PoolFor(Runs runs) const {
    if (runs == Runs::kReadPool) return read_pool_.get();
    if (runs == Runs::kProbePool) return probe_pool_.get();
    return nullptr;
  }
  HttpStats stats_;
  /// Per route (last: unmatched) metric handles, so that counting a request
  /// needs no label strings. Status counters are created on first use.
  struct RouteMetrics {
    std::string route;
    /// Per status code, created on first use: request counter and latency histogram.
    std::array<std::atomic<std::atomic<uint64_t>*>, 600> by_status{};
    std::array<std::atomic<obs::HistogramFamily::Child*>, 600> duration_by_status{};
  };
  std::vector<std::unique_ptr<RouteMetrics>> route_metrics_;
  void CountRequest(RouteMetrics& m, unsigned status, double seconds);
  /// Null without an engine; after StopPools, their Run runs inline.
  /// Declared last, so that they stop (running what they hold) while
  /// everything their tasks use still exists.
  std::unique_ptr<TaskPool> read_pool_;
  /// Scale-out only: key lookups that read PostgreSQL and the requests that
  /// wait on them, apart from the read pool's reports and exports.
  std::unique_ptr<TaskPool> key_pool_;
  std::unique_ptr<TaskPool> probe_pool_;
};

/// The API key of a request: "Authorization: Bearer <key>" or "X-API-Key".
std::string_view ApiKeyOf(const Request& req);

}  // namespace quotum::http
