#pragma once

#include <boost/url/params_view.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "quotum/core/billing_period.h"

namespace quotum::http {

/// The range a report covers: whole UTC days [from, to], and the instants
/// [start, end) it spans (the billing period's own bounds for the current
/// period, else from's midnight to the midnight after `to`).
struct ReportRange {
  absl::CivilDay from;
  absl::CivilDay to;
  absl::Time start;
  absl::Time end;
};

/// The range of `period`, by days and by its exact bounds.
ReportRange PeriodRange(const BillingPeriod& period);

/// Reads a report's range from the query: `range=today|7d|30d|period`, or
/// `from`/`to` (YYYY-MM-DD, UTC, inclusive; a missing one is today), or
/// neither (the current `period`). Refuses, as 400 with code
/// `invalid_query`, a bad date, an unknown range or `range` together with
/// `from`/`to`; and as 400 `invalid_range`, `from` after `to` or a range over
/// engine::kMaxReportDays days. Changes nothing.
absl::StatusOr<ReportRange> ParseReportRange(const boost::urls::params_view& q,
                                             absl::CivilDay today, const BillingPeriod& period);

/// The value of query parameter `name`, if present.
std::optional<std::string> QueryParam(const boost::urls::params_view& q, std::string_view name);

/// A date query parameter (YYYY-MM-DD); 400 `invalid_query` otherwise.
absl::StatusOr<absl::CivilDay> ParseDay(std::string_view name, const std::string& text);

}  // namespace quotum::http
