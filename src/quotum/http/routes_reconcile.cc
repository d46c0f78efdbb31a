// Admin: the hot counters beside their aggregates (GET /admin/reconcile), and
// the nightly sync run now (POST /admin/reconcile). docs/reconcile.md.
#include "quotum/core/billing_period.h"
#include "quotum/engine/errors.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/render.h"
#include "quotum/http/report_query.h"

namespace quotum::http {
namespace {

boost::json::object RowObject(const engine::ReconcileRow& r) {
  return boost::json::object{{"tenant", r.tenant_id},
                             {"meter", r.meter},
                             {"period_start", FormatRfc3339(r.period_start)},
                             {"counter", r.counter},
                             {"aggregate", r.aggregate},
                             {"drift", r.drift.units},
                             {"drift_percent", r.drift.percent},
                             {"flagged", r.drift.flagged},
                             {"repaired", r.repaired}};
}

boost::json::object ReportObject(const engine::ReconcileReport& report, bool flagged_only,
                                 int flag_percent) {
  boost::json::array rows;
  for (const engine::ReconcileRow& r : report.rows) {
    if (!flagged_only || r.drift.flagged) rows.push_back(RowObject(r));
  }
  return boost::json::object{
      {"at", FormatRfc3339(report.at)}, {"counters_from", report.counters_from},
      {"flag_percent", flag_percent},   {"tenants", report.tenants},
      {"flagged", report.flagged},      {"repaired", report.repaired},
      {"rows", std::move(rows)}};
}

// `flagged=true|false` (default false): only the flagged rows.
absl::StatusOr<bool> FlaggedOnly(const boost::urls::params_view& q) {
  std::optional<std::string> v = QueryParam(q, "flagged");
  if (!v || *v == "false") return false;
  if (*v == "true") return true;
  return engine::Error(absl::StatusCode::kInvalidArgument, "invalid_query",
                       "\"flagged\" must be true or false.");
}

}  // namespace

void Api::GetReconcile(Call& c) {
  ASSIGN_OR_REPLY(flagged_only, FlaggedOnly(c.query), c);
  ASSIGN_OR_REPLY(report, engine_->Reconcile(false), c);
  boost::json::object o = ReportObject(report, flagged_only, engine_->reconcile_flag_percent());
  std::optional<engine::SyncSummary> last = engine_->LastSync();
  if (last) {
    o["last_sync"] = boost::json::object{
        {"at", FormatRfc3339(last->at)}, {"flagged", last->flagged}, {"repaired", last->repaired}};
  } else {
    o["last_sync"] = nullptr;
  }
  c.respond(JsonReply(200, o));
}

void Api::RunReconcile(Call& c) {
  ASSIGN_OR_REPLY(flagged_only, FlaggedOnly(c.query), c);
  ASSIGN_OR_REPLY(report, engine_->SyncAggregates(), c);
  c.respond(JsonReply(200, ReportObject(report, flagged_only, engine_->reconcile_flag_percent())));
}

}  // namespace quotum::http
