#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace quotum {

/// How a plan's billing periods are laid out on the time line.
struct BillingInterval {
  enum class Unit { kMonth, kDays };
  Unit unit = Unit::kMonth;
  /// Period length in days when unit == kDays (>= 1).
  int days = 0;
  /// When true, periods start on the 1st of the month at 00:00 UTC (month
  /// unit) or at 00:00 UTC of the anchor's day (days unit), not at the
  /// subscription instant.
  bool calendar = false;
};

/// Parses `interval` ("month" or "<N>d", 1 <= N <= 3660) and `anchor`
/// ("subscription" or "calendar").
absl::StatusOr<BillingInterval> ParseBillingInterval(absl::string_view interval,
                                                     absl::string_view anchor);

/// One billing period: [start, end), UTC.
struct BillingPeriod {
  absl::Time start;
  absl::Time end;
  /// Number of periods since the anchor's period (0 for the first one; negative
  /// before the anchor).
  int64_t index = 0;

  /// "YYYY-MM" of `start`, as reported in the API's `period` field.
  std::string Label() const;
  bool Contains(absl::Time t) const { return t >= start && t < end; }
  friend bool operator==(const BillingPeriod&, const BillingPeriod&) = default;
};

/// The period of a subscription anchored at `anchor` that contains `now`.
/// Month periods keep the anchor's day and time of day; a day that the month
/// lacks is clamped to its last day (Jan 31 -> Feb 28/29 -> Mar 31).
BillingPeriod PeriodAt(absl::Time anchor, const BillingInterval& interval, absl::Time now);

/// Start of the k-th period after the anchor's period (k may be negative).
absl::Time PeriodStart(absl::Time anchor, const BillingInterval& interval, int64_t k);

/// Formats t as RFC 3339 in UTC with a 'Z' suffix and whole seconds.
std::string FormatRfc3339(absl::Time t);

/// "YYYY-MM-DD", the year always four digits (0999-01-01).
std::string FormatDate(absl::CivilDay day);

/// Parses an RFC 3339 timestamp (any offset); returns an error naming the input.
absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text);

}  // namespace quotum
