// The admin's risk view: GET /admin/risk.
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/quota.h"
#include "quotum/core/string_views.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/render.h"
#include "quotum/http/report_query.h"

namespace quotum::http {
namespace {

constexpr int kDefaultShown = 20;
constexpr int kMaxShown = 100;

// The forecast of the meter that gives the risk, when it projects a percentage.
boost::json::value RiskForecastJson(const Catalog& cat, const engine::TenantRisk& r) {
  const MeterId m = r.score.meter;
  if (m >= r.usage.forecasts.size() || !r.usage.forecasts[m]) return nullptr;
  const Forecast& f = *r.usage.forecasts[m];
  if (!f.projected_percentage) return nullptr;
  boost::json::object o;
  o["meter"] = cat.meters[m].name;
  o["projected_percentage"] = *f.projected_percentage;
  o["limit_reached_at"] = TimeOrNull(f.limit_reached_at);
  return o;
}

boost::json::object RiskJson(const Catalog& cat, const engine::TenantRisk& r) {
  const engine::UsageView& u = r.usage;
  const MeterId m = r.score.meter;
  boost::json::object o;
  o["id"] = u.tenant.id;
  o["name"] = u.tenant.name;
  o["plan"] = u.tenant.plan;
  o["risk_percent"] = r.score.percent;
  o["meter"] = cat.meters[m].name;
  o["used"] = u.used[m];
  o["limit"] = OptionalNumber(u.limits[m]);
  const double pct = UsagePercentage(u.used[m], u.limits[m]);
  o["percentage"] = pct;
  o["band"] = ToStd(BandName(BandFor(pct, u.plan->bands)));
  o["forecast"] = RiskForecastJson(cat, r);
  o["alerts"] = r.alerts;
  o["period_end"] = FormatRfc3339(u.tenant.period.end);
  return o;
}

}  // namespace

void Api::AdminRisk(Call& c) {
  int shown = kDefaultShown;
  if (auto text = QueryParam(c.query, "limit")) {
    if (!absl::SimpleAtoi(*text, &shown) || shown < 1 || shown > kMaxShown) {
      return c.respond(ErrorReply(400, "invalid_query",
                                  Cat("\"limit\" must be an integer from 1 to ", kMaxShown, ".")));
    }
  }
  ASSIGN_OR_REPLY(report, engine_->TenantsAtRisk(static_cast<size_t>(shown)), c);
  const Catalog& cat = engine_->catalog();
  boost::json::array tenants;
  for (const engine::TenantRisk& r : report.tenants) tenants.push_back(RiskJson(cat, r));
  boost::json::object o;
  o["generated_at"] = FormatRfc3339(engine_->clock().Now());
  o["considered"] = report.considered;
  o["tenants"] = std::move(tenants);
  c.respond(JsonReply(200, o));
}

}  // namespace quotum::http
