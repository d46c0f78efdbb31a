// Forecast of one meter's period-end usage from its daily series, the instant
// its limit will be reached, and the plan that fits the projection. Pure: the
// caller supplies `now` and the series.
//
// Method. The daily series gives a pace in units per UTC day; the projection is
//   projected = used + sum over the rest of the period of pace x weekday factor
// walked day by day from `now` to `period_end` (a partial day counts by its
// fraction). The pace depends on how many *complete* UTC days the period has
// seen (days wholly inside [period_start, now); the first day of a period that
// starts after midnight is partial and only counts toward `used`):
//   - "no_data"       used is 0 and every daily entry is 0: projected = used,
//                     nothing is reached.
//   - "today_pace"    no complete day (or an empty series): used divided by
//                     the time elapsed since period_start, at least one hour
//                     (so a minute after midnight does not explode).
//   - "ewma7+today"   one complete day: that day and today so far pooled,
//                     (units of the day + units today) / (1 + elapsed fraction
//                     of today, at least 1/24).
//   - "ewma7"         two or more complete days: an exponentially weighted mean
//                     of the complete days, half-life 7 days (yesterday weighs
//                     1, a week ago 1/2, two weeks ago 1/4). Today's partial
//                     day is ignored: intraday usage is too uneven to scale.
//   - "ewma7+weekday" the same with weekday seasonality, from 14 complete days
//                     on (two samples per weekday): factor(weekday) = mean of
//                     that weekday's complete days / mean of all complete days,
//                     clamped to [0.5, 2.0]; the level is the ratio estimator
//                     sum(w x) / sum(w factor), so a perfectly seasonal series
//                     gives its level back exactly whatever the weights, and a
//                     clamped factor (weekends at zero) moves units between
//                     weekdays without changing a week's total.
// Properties the tests hold it to: a flat tenant (c units every day) projects
// used + c x remaining days; a growing tenant projects more than a flat one
// with the same total so far; a tenant with one day of data projects its pace
// of today.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "quotum/core/catalog.h"

namespace quotum {

/// One meter of one tenant in the current billing period.
struct ForecastInput {
  absl::Time period_start;  ///< the period is [period_start, period_end)
  absl::Time period_end;
  absl::Time now;  ///< clamped into the period
  /// The period counter now: the base of the projection. The series only
  /// supplies the pace, so a series that lags the counter (aggregates written
  /// nightly) shifts the pace, never the base.
  uint64_t used = 0;
  std::optional<uint64_t> limit;  ///< the effective limit; nullopt = unlimited
  /// Units per UTC day of the period: daily[0] is the UTC day of period_start,
  /// the last entry today (partial). A missing earlier day counts as 0, a
  /// missing today as what `used` holds beyond the earlier days; an empty
  /// series means "today_pace"; entries after today are ignored.
  std::vector<uint64_t> daily;
};

/// Tunables of the method; the defaults are the documented method above.
struct ForecastOptions {
  double half_life_days = 7.0;      ///< of the exponential weights (> 0)
  int min_days_for_weekday = 14;    ///< complete days before seasonality applies
  double min_weekday_factor = 0.5;  ///< clamp of each weekday's factor
  double max_weekday_factor = 2.0;
};

struct Forecast {
  /// used + the projected units until period_end, rounded to the nearest
  /// unit, at most kMaxCounter. Never less than used.
  uint64_t projected_period_end = 0;
  /// UsagePercentage(projected_period_end, limit): one decimal, as the API's
  /// usage_percentage; nullopt when unlimited.
  std::optional<double> projected_percentage;
  /// The instant the projected usage reaches the limit, set exactly when
  /// ForecastExceedsLimit holds and used < limit (so it lies before
  /// period_end). nullopt when unlimited, when the projection ends at or below
  /// the limit, and when used >= limit already (that the limit is reached is
  /// visible from usage itself; there is nothing to forecast).
  std::optional<absl::Time> limit_reached_at;
  /// "no_data", "today_pace", "ewma7+today", "ewma7" or "ewma7+weekday" (the
  /// number is the half-life in days).
  std::string method;
  std::optional<uint64_t> limit;  ///< the input's limit, for ForecastExceedsLimit
};

/// Projects one meter's usage to its period end (see the method above).
Forecast ProjectUsage(const ForecastInput& in, const ForecastOptions& options = {});

/// True when the projection passes the limit: projected_period_end > limit, in
/// integers (a percentage rounded to one decimal would hide 10004 of 10000).
/// The engine fires usage.forecast_exceeds_limit on the first evaluation of a
/// period where this holds; once per period is its bookkeeping, not this.
bool ForecastExceedsLimit(const Forecast& f);

/// The plan to recommend for the projected usage: each (meter, units) pair
/// must fit with `headroom_percent` to spare, i.e. the plan's limit for the
/// meter is unlimited or >= ceil(units x (100 + headroom_percent) / 100)
/// (default 20 %: 1000 units need a limit of 1200). Pass every meter that must
/// fit (projected counters, current gauges).
///  - When `current` fits, returns current.name: the dashboard says "stay".
///    A downgrade is never advised from one period's projection.
///  - Otherwise the cheapest fitting plan with a listed price (price_cents
///    >= 0) and the same billing interval (unit and days) as `current`; ties go
///    to the first in catalog order. Plans priced by contract (-1) are never
///    recommended (sales talks to those tenants).
///  - nullopt when no plan fits.
std::optional<std::string> RecommendPlan(const Catalog& catalog, const Plan& current,
                                         const std::vector<std::pair<MeterId, uint64_t>>& projected,
                                         uint32_t headroom_percent = 20);

}  // namespace quotum
