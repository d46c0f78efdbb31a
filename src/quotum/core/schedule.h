// When the scheduled jobs run: the nightly reconciliation and the weekly and
// monthly usage reports. Times are UTC. Pure.
#pragma once

#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace quotum {

/// The last run time at or before `now` of a job that runs every day at
/// `time_of_day` after midnight UTC (0 <= time_of_day < 24 h): today's when
/// it has passed, else yesterday's.
absl::Time LastDailyRun(absl::Time now, absl::Duration time_of_day);

/// A span of whole UTC days, `first` to `last` inclusive.
struct DayRange {
  absl::CivilDay first;
  absl::CivilDay last;
  friend bool operator==(const DayRange&, const DayRange&) = default;
};

/// The last whole ISO week (Monday to Sunday) that ended at or before `now`.
DayRange LastCompletedWeek(absl::Time now);

/// The last whole calendar month that ended at or before `now`.
DayRange LastCompletedMonth(absl::Time now);

}  // namespace quotum
