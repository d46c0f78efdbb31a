// Alert routes: the thresholds a tenant's usage reached.
#include "quotum/core/billing_period.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/render.h"
#include "quotum/http/report_query.h"

namespace quotum::http {
namespace {

boost::json::object AlertObject(const engine::AlertRecord& a) {
  boost::json::object o{{"meter", a.meter},
                        {"threshold", a.threshold},
                        {"value", a.value},
                        {"limit", a.limit},
                        {"period", BillingPeriod{a.period_start, a.period_end}.Label()},
                        {"period_start", FormatRfc3339(a.period_start)},
                        {"period_end", FormatRfc3339(a.period_end)},
                        {"at", FormatRfc3339(a.at)}};
  o["resolved_at"] = a.resolved_at ? boost::json::value(FormatRfc3339(*a.resolved_at)) : nullptr;
  return o;
}

}  // namespace

void Api::ListAlerts(Call& c) {
  ASSIGN_OR_REPLY(range, ParseReportRange(c.query, Today(), engine_->CurrentPeriod(c.who)), c);
  ASSIGN_OR_REPLY(alerts, engine_->Alerts(c.who, range.start, range.end), c);
  boost::json::array arr;
  for (const engine::AlertRecord& a : alerts) arr.push_back(AlertObject(a));
  c.respond(JsonReply(200, boost::json::object{{"from", FormatDate(range.from)},
                                               {"to", FormatDate(range.to)},
                                               {"alerts", std::move(arr)}}));
}

}  // namespace quotum::http
