#include "quotum/http/report_query.h"

#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::http {

namespace {
absl::Time Midnight(absl::CivilDay d) { return absl::FromCivil(d, absl::UTCTimeZone()); }

ReportRange DayRange(absl::CivilDay from, absl::CivilDay to) {
  return {from, to, Midnight(from), Midnight(to + 1)};
}

absl::StatusOr<ReportRange> Preset(const std::string& name, absl::CivilDay today,
                                   const BillingPeriod& period) {
  if (name == "today") return DayRange(today, today);
  if (name == "7d") return DayRange(today - 6, today);
  if (name == "30d") return DayRange(today - 29, today);
  if (name == "period") return PeriodRange(period);
  return engine::BadRequest("invalid_query",
                            absl::StrCat("\"range\" must be one of today, 7d, 30d, period; got \"",
                                         name.substr(0, 32), "\"."));
}

absl::Status CheckSpan(const ReportRange& r) {
  if (r.to < r.from) {
    return engine::BadRequest("invalid_range", "\"from\" must not be after \"to\".");
  }
  if (r.to - r.from >= engine::kMaxReportDays) {
    return engine::BadRequest("invalid_range",
                              absl::StrCat("A range covers at most ", engine::kMaxReportDays,
                                           " days; this one covers ", r.to - r.from + 1, "."));
  }
  return absl::OkStatus();
}
}  // namespace

std::optional<std::string> QueryParam(const boost::urls::params_view& q, std::string_view name) {
  auto it = q.find(name);
  if (it == q.end()) return std::nullopt;
  return std::string((*it).value);
}

absl::StatusOr<absl::CivilDay> ParseDay(std::string_view name, const std::string& text) {
  absl::CivilDay d;
  if (text.size() != 10 || !absl::ParseCivilTime(text, &d) || absl::FormatCivilTime(d) != text) {
    return engine::BadRequest("invalid_query", Cat("\"", name, "\" must be a date YYYY-MM-DD."));
  }
  return d;
}

ReportRange PeriodRange(const BillingPeriod& period) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  return {absl::ToCivilDay(period.start, utc), absl::ToCivilDay(period.end - absl::Seconds(1), utc),
          period.start, period.end};
}

absl::StatusOr<ReportRange> ParseReportRange(const boost::urls::params_view& q,
                                             absl::CivilDay today, const BillingPeriod& period) {
  const auto range = QueryParam(q, "range");
  const auto from_text = QueryParam(q, "from");
  const auto to_text = QueryParam(q, "to");
  if (range && (from_text || to_text)) {
    return engine::BadRequest("invalid_query", "Use either range or from/to, not both.");
  }
  ReportRange r;
  if (range) {
    auto preset = Preset(*range, today, period);
    if (!preset.ok()) return preset.status();
    r = *preset;
  } else if (from_text || to_text) {
    absl::CivilDay from = today, to = today;
    if (from_text) {
      auto d = ParseDay("from", *from_text);
      if (!d.ok()) return d.status();
      from = *d;
    }
    if (to_text) {
      auto d = ParseDay("to", *to_text);
      if (!d.ok()) return d.status();
      to = *d;
    }
    r = DayRange(from, to);
  } else {
    r = PeriodRange(period);
  }
  if (absl::Status s = CheckSpan(r); !s.ok()) return s;
  return r;
}

}  // namespace quotum::http
