// The nightly run time, the report ranges and the drift measure.
#include "quotum/core/schedule.h"

#include "gtest/gtest.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/reconcile.h"
#include "support/time_literal.h"

namespace quotum {
namespace {

TEST(ScheduleTest, TheDailyRunIsTodaysOnceItHasPassedElseYesterdays) {
  EXPECT_EQ(LastDailyRun(T("2026-11-29T00:00:00Z"), absl::ZeroDuration()),
            T("2026-11-29T00:00:00Z"));
  EXPECT_EQ(LastDailyRun(T("2026-11-29T15:00:00Z"), absl::ZeroDuration()),
            T("2026-11-29T00:00:00Z"));
  EXPECT_EQ(LastDailyRun(T("2026-11-29T02:29:59Z"), absl::Minutes(150)), T("2026-11-28T02:30:00Z"));
  EXPECT_EQ(LastDailyRun(T("2026-11-29T02:30:00Z"), absl::Minutes(150)), T("2026-11-29T02:30:00Z"));
  EXPECT_EQ(LastDailyRun(T("2026-01-01T00:10:00Z"), absl::Hours(23)), T("2025-12-31T23:00:00Z"));
}

TEST(ScheduleTest, TheLastCompletedWeekRunsMondayToSunday) {
  // 2026-11-29 is a Sunday: the week in progress began on Monday the 23rd.
  EXPECT_EQ(LastCompletedWeek(T("2026-11-29T23:59:59Z")),
            (DayRange{absl::CivilDay(2026, 11, 16), absl::CivilDay(2026, 11, 22)}));
  EXPECT_EQ(LastCompletedWeek(T("2026-11-30T00:00:00Z")),
            (DayRange{absl::CivilDay(2026, 11, 23), absl::CivilDay(2026, 11, 29)}));
  // Across a year's end.
  EXPECT_EQ(LastCompletedWeek(T("2026-01-01T12:00:00Z")),
            (DayRange{absl::CivilDay(2025, 12, 22), absl::CivilDay(2025, 12, 28)}));
}

TEST(ScheduleTest, TheLastCompletedMonthIsTheCalendarMonthBefore) {
  EXPECT_EQ(LastCompletedMonth(T("2026-11-29T10:00:00Z")),
            (DayRange{absl::CivilDay(2026, 10, 1), absl::CivilDay(2026, 10, 31)}));
  EXPECT_EQ(LastCompletedMonth(T("2026-03-01T00:00:00Z")),
            (DayRange{absl::CivilDay(2026, 2, 1), absl::CivilDay(2026, 2, 28)}));
  EXPECT_EQ(LastCompletedMonth(T("2026-01-15T00:00:00Z")),
            (DayRange{absl::CivilDay(2025, 12, 1), absl::CivilDay(2025, 12, 31)}));
}

TEST(DriftTest, IsSignedAndAPercentOfTheLargerValue) {
  Drift d = MeasureDrift(1000, 940, 5);
  EXPECT_EQ(d.units, 60);
  EXPECT_DOUBLE_EQ(d.percent, 6.0);
  EXPECT_TRUE(d.flagged);
  d = MeasureDrift(940, 1000, 5);
  EXPECT_EQ(d.units, -60);
  EXPECT_DOUBLE_EQ(d.percent, 6.0);
  EXPECT_TRUE(d.flagged);
}

TEST(DriftTest, FiveExactlyIsNotFlaggedAndOneMoreUnitIs) {
  EXPECT_FALSE(MeasureDrift(1000, 950, 5).flagged);
  EXPECT_TRUE(MeasureDrift(1000, 949, 5).flagged);
  EXPECT_DOUBLE_EQ(MeasureDrift(3, 2, 5).percent, 33.33);
}

TEST(DriftTest, ZeroesAndHugeValues) {
  Drift d = MeasureDrift(0, 0, 5);
  EXPECT_EQ(d.units, 0);
  EXPECT_DOUBLE_EQ(d.percent, 0);
  EXPECT_FALSE(d.flagged);
  d = MeasureDrift(0, 7, 5);
  EXPECT_DOUBLE_EQ(d.percent, 100);
  EXPECT_TRUE(d.flagged);
  const uint64_t big = 1'000'000'000'000'000'000;  // 10^18: the product needs 128 bits
  d = MeasureDrift(big, big - big / 10, 5);
  EXPECT_DOUBLE_EQ(d.percent, 10);
  EXPECT_TRUE(d.flagged);
}

}  // namespace
}  // namespace quotum
