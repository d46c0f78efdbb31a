#include "quotum/notify/email_text.h"

#include "absl/strings/str_cat.h"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
#include "quotum/core/billing_period.h"

namespace quotum::notify {
namespace {

std::string FieldOf(const engine::EventRecord& e, std::string_view name) {
  for (const engine::EventField& f : e.fields) {
    if (f.name == name) return f.value;
  }
  return "";
}

std::string SubjectOf(const engine::EventRecord& e) {
  if (e.type == "usage.threshold_reached") {
    return absl::StrCat("[Quotum] ", e.tenant_id, ": ", FieldOf(e, "meter"), " reached ",
                        FieldOf(e, "threshold"), "% of its limit");
  }
  if (e.type == "usage.threshold_resolved") {
    return absl::StrCat("[Quotum] ", e.tenant_id, ": ", FieldOf(e, "meter"), " is below ",
                        FieldOf(e, "threshold"), "% of its limit again");
  }
  if (e.type.starts_with("usage.report.")) {
    return absl::StrCat("[Quotum] ", e.tenant_id, ": ",
                        e.type == "usage.report.weekly" ? "weekly" : "monthly", " usage report, ",
                        FieldOf(e, "from"), " to ", FieldOf(e, "to"));
  }
  return absl::StrCat("[Quotum] ", e.tenant_id, ": ", e.type);
}

boost::json::value ParsedField(const engine::EventRecord& e, std::string_view name) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(FieldOf(e, name), ec);
  return ec ? boost::json::value() : v;
}

std::string Text(const boost::json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return boost::json::serialize(v);
}

// A report as lines a person reads: per meter its total, channels and
// busiest day; the alerts; the forecast.
std::string ReportText(const engine::EventRecord& e) {
  std::string text = absl::StrCat(e.detail, ".\n\nPlan: ", FieldOf(e, "plan"), "\n\n");
  const boost::json::value totals = ParsedField(e, "totals");
  if (totals.is_object()) {
    for (const auto& [meter, t] : totals.as_object()) {
      absl::StrAppend(&text, std::string(meter), ": ", Text(t.at("total")));
      std::string sep = " (";
      for (const auto& [channel, units] : t.at("channels").as_object()) {
        absl::StrAppend(&text, sep, std::string(channel), " ", Text(units));
        sep = ", ";
      }
      if (sep == ", ") text += ")";
      absl::StrAppend(&text, "; busiest day ", Text(t.at("peak_day")), " with ",
                      Text(t.at("peak_value")), "\n");
    }
  }
  const boost::json::value alerts = ParsedField(e, "alerts");
  if (alerts.is_array() && !alerts.as_array().empty()) {
    text += "\nAlerts:\n";
    for (const auto& a : alerts.as_array()) {
      absl::StrAppend(&text, "  ", Text(a.at("meter")), " reached ", Text(a.at("threshold")),
                      "% at ", Text(a.at("at")), "\n");
    }
  }
  const boost::json::value f = ParsedField(e, "forecast");
  if (f.is_object()) {
    absl::StrAppend(&text, "\nForecast for ", Text(f.at("period")), ": ", Text(f.at("meter")), " ",
                    Text(f.at("projected_period_end")), " by the period's end");
    if (!f.at("limit").is_null()) absl::StrAppend(&text, " of a limit of ", Text(f.at("limit")));
    if (!f.at("recommended_plan").is_null()) {
      absl::StrAppend(&text, "; recommended plan: ", Text(f.at("recommended_plan")));
    }
    text += "\n";
  }
  return text;
}

}  // namespace

Email EmailOf(const engine::EventRecord& e, const std::string& to) {
  if (e.type.starts_with("usage.report.")) {
    std::string text = ReportText(e);
    absl::StrAppend(&text, "\nEvent id: ", e.id, "\n");
    return Email{to, SubjectOf(e), std::move(text), e.id};
  }
  std::string text = absl::StrCat(e.detail, ".\n\n");
  absl::StrAppend(&text, "Event:  ", e.type, "\nTenant: ", e.tenant_id,
                  "\nAt:     ", FormatRfc3339(e.at), "\n");
  for (const engine::EventField& f : e.fields) absl::StrAppend(&text, f.name, ": ", f.value, "\n");
  absl::StrAppend(&text, "\nEvent id: ", e.id, "\n");
  return Email{to, SubjectOf(e), std::move(text), e.id};
}

}  // namespace quotum::notify
