#include "quotum/engine/usage_reports.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
#include "quotum/core/billing_period.h"
#include "quotum/engine/events.h"

namespace quotum::engine {
namespace {

// Per meter (by name, in name order): the range's total, per channel, and
// its busiest day (the earliest of equals).
boost::json::object Totals(const std::vector<DailyChannelRow>& rows) {
  struct MeterTotal {
    uint64_t total = 0;
    std::map<std::string, uint64_t> channels;
    std::map<absl::CivilDay, uint64_t> days;
  };
  std::map<std::string, MeterTotal> meters;
  for (const DailyChannelRow& r : rows) {
    MeterTotal& m = meters[r.meter];
    m.total += r.value;
    if (!r.channel.empty()) m.channels[r.channel] += r.value;
    m.days[r.day] += r.value;
  }
  boost::json::object out;
  for (const auto& [name, m] : meters) {
    if (m.total == 0) continue;
    boost::json::object channels;
    for (const auto& [channel, units] : m.channels) channels[channel] = units;
    absl::CivilDay peak = m.days.begin()->first;
    for (const auto& [day, units] : m.days) {
      if (units > m.days.at(peak)) peak = day;
    }
    out[name] = boost::json::object{{"total", m.total},
                                    {"channels", std::move(channels)},
                                    {"peak_day", FormatDate(peak)},
                                    {"peak_value", m.days.at(peak)}};
  }
  return out;
}

boost::json::array AlertsJson(const std::vector<AlertRecord>& alerts) {
  boost::json::array out;
  for (const AlertRecord& a : alerts) {
    out.push_back(boost::json::object{{"meter", a.meter},
                                      {"threshold", a.threshold},
                                      {"value", a.value},
                                      {"limit", a.limit},
                                      {"at", FormatRfc3339(a.at)}});
  }
  return out;
}

boost::json::value ForecastJson(const Catalog& cat, const UsageView& u, MeterId m) {
  if (m >= u.forecasts.size() || !u.forecasts[m]) return nullptr;
  const Forecast& f = *u.forecasts[m];
  boost::json::object o{{"meter", cat.meters[m].name},
                        {"period", u.tenant.period.Label()},
                        {"projected_period_end", f.projected_period_end},
                        {"method", f.method}};
  o["limit"] = u.limits[m] ? boost::json::value(*u.limits[m]) : nullptr;
  o["projected_percentage"] =
      f.projected_percentage ? boost::json::value(*f.projected_percentage) : nullptr;
  o["limit_reached_at"] =
      f.limit_reached_at ? boost::json::value(FormatRfc3339(*f.limit_reached_at)) : nullptr;
  o["recommended_plan"] = u.recommended_plan ? boost::json::value(*u.recommended_plan) : nullptr;
  return o;
}

// "Weekly usage 2026-11-16 to 2026-11-22: 1234 messages_sent, 2000 api_calls"
std::string Sentence(std::string_view type, const DayRange& range,
                     const boost::json::object& totals) {
  std::string out = absl::StrCat(type == kWeeklyReport ? "Weekly" : "Monthly", " usage ",
                                 FormatDate(range.first), " to ", FormatDate(range.last));
  if (totals.empty()) return out + ": nothing used";
  const char* sep = ": ";
  for (const auto& [meter, t] : totals) {
    absl::StrAppend(&out, sep, t.at("total").to_number<uint64_t>(), " ",
                    std::string(meter.data(), meter.size()));
    sep = ", ";
  }
  return out;
}

}  // namespace

std::string ReportEventId(std::string_view tenant_id, std::string_view type,
                          const DayRange& range) {
  return EventId({tenant_id, type, FormatDate(range.first), FormatDate(range.last)});
}

EventRecord ReportEvent(const Catalog& cat, const ReportInput& in) {
  const UsageView& u = *in.usage;
  boost::json::object totals = Totals(in.days);
  std::string detail = Sentence(in.type, in.range, totals);
  std::vector<EventField> fields{
      {"from", FormatDate(in.range.first)},
      {"to", FormatDate(in.range.last)},
      {"plan", u.plan ? u.plan->name : u.tenant.plan},
      {"totals", boost::json::serialize(totals), false, true},
      {"alerts", boost::json::serialize(AlertsJson(in.alerts)), false, true},
      {"forecast", boost::json::serialize(ForecastJson(cat, u, in.forecast_meter)), false, true}};
  return EventRecord{u.tenant.id,
                     std::string(in.type),
                     FormatDate(in.range.first),
                     std::move(detail),
                     in.now,
                     ReportEventId(u.tenant.id, in.type, in.range),
                     std::move(fields)};
}

}  // namespace quotum::engine
