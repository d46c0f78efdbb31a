#include "quotum/core/schedule.h"

namespace quotum {

absl::Time LastDailyRun(absl::Time now, absl::Duration time_of_day) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilDay today = absl::ToCivilDay(now, utc);
  const absl::Time run = absl::FromCivil(today, utc) + time_of_day;
  return run <= now ? run : run - absl::Hours(24);
}

DayRange LastCompletedWeek(absl::Time now) {
  const absl::CivilDay today = absl::ToCivilDay(now, absl::UTCTimeZone());
  // Days since this week's Monday: 0 on a Monday.
  const int since_monday =
      (static_cast<int>(absl::GetWeekday(today)) - static_cast<int>(absl::Weekday::monday) + 7) % 7;
  const absl::CivilDay this_monday = today - since_monday;
  return DayRange{this_monday - 7, this_monday - 1};
}

DayRange LastCompletedMonth(absl::Time now) {
  const absl::CivilMonth this_month(absl::ToCivilDay(now, absl::UTCTimeZone()));
  const absl::CivilMonth last = this_month - 1;
  return DayRange{absl::CivilDay(last), absl::CivilDay(this_month) - 1};
}

}  // namespace quotum
