#include "quotum/core/billing_period.h"

#include <limits>
#include <random>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "support/time_literal.h"

namespace quotum {
namespace {

struct Case {
  const char* name;
  const char* anchor;
  const char* interval;
  const char* anchor_mode;
  const char* now;
  const char* start;
  const char* end;
  const char* label;
};

// Golden table: the seed examples, month-end clamping across leap and
// non-leap years, anchors late in the day, fixed-length and calendar periods.
const Case kCases[] = {
    {"seed_jan15", "2026-01-15T00:00:00Z", "month", "subscription", "2026-02-13T12:00:00Z",
     "2026-01-15T00:00:00Z", "2026-02-15T00:00:00Z", "2026-01"},
    {"seed_30d_feb3", "2026-02-03T00:00:00Z", "30d", "subscription", "2026-02-20T00:00:00Z",
     "2026-02-03T00:00:00Z", "2026-03-05T00:00:00Z", "2026-02"},
    {"seed_calendar", "2026-01-15T12:00:00Z", "month", "calendar", "2026-02-13T00:00:00Z",
     "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-02"},
    {"wati_18th", "2026-03-18T09:00:00Z", "month", "subscription", "2026-05-18T08:59:59Z",
     "2026-04-18T09:00:00Z", "2026-05-18T09:00:00Z", "2026-04"},
    {"jan31_to_feb28", "2026-01-31T10:30:00Z", "month", "subscription", "2026-02-15T00:00:00Z",
     "2026-01-31T10:30:00Z", "2026-02-28T10:30:00Z", "2026-01"},
    {"feb28_to_mar31", "2026-01-31T10:30:00Z", "month", "subscription", "2026-03-01T00:00:00Z",
     "2026-02-28T10:30:00Z", "2026-03-31T10:30:00Z", "2026-02"},
    {"mar31_to_apr30", "2026-01-31T10:30:00Z", "month", "subscription", "2026-04-05T00:00:00Z",
     "2026-03-31T10:30:00Z", "2026-04-30T10:30:00Z", "2026-03"},
    {"jan31_leap_feb29", "2024-01-31T00:00:00Z", "month", "subscription", "2024-03-10T00:00:00Z",
     "2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z", "2024-02"},
    {"feb29_anchor_nonleap", "2024-02-29T00:00:00Z", "month", "subscription",
     "2025-03-01T00:00:00Z", "2025-02-28T00:00:00Z", "2025-03-29T00:00:00Z", "2025-02"},
    {"feb29_anchor_leap_again", "2024-02-29T00:00:00Z", "month", "subscription",
     "2028-02-29T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-29T00:00:00Z", "2028-02"},
    {"late_in_day_before", "2026-03-10T23:59:59Z", "month", "subscription", "2026-04-10T23:59:58Z",
     "2026-03-10T23:59:59Z", "2026-04-10T23:59:59Z", "2026-03"},
    {"late_in_day_at_boundary", "2026-03-10T23:59:59Z", "month", "subscription",
     "2026-04-10T23:59:59Z", "2026-04-10T23:59:59Z", "2026-05-10T23:59:59Z", "2026-04"},
    {"year_wrap", "2025-12-20T00:00:00Z", "month", "subscription", "2026-01-19T00:00:00Z",
     "2025-12-20T00:00:00Z", "2026-01-20T00:00:00Z", "2025-12"},
    {"30d_third_period", "2026-02-03T00:00:00Z", "30d", "subscription", "2026-04-05T00:00:00Z",
     "2026-04-04T00:00:00Z", "2026-05-04T00:00:00Z", "2026-04"},
    {"7d_calendar_day", "2026-02-03T15:00:00Z", "7d", "calendar", "2026-02-10T01:00:00Z",
     "2026-02-10T00:00:00Z", "2026-02-17T00:00:00Z", "2026-02"},
    {"before_anchor", "2026-05-15T00:00:00Z", "month", "subscription", "2026-05-01T00:00:00Z",
     "2026-04-15T00:00:00Z", "2026-05-15T00:00:00Z", "2026-04"},
};

class GoldenPeriods : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenPeriods, Matches) {
  const Case& c = GetParam();
  auto interval = ParseBillingInterval(c.interval, c.anchor_mode);
  ASSERT_TRUE(interval.ok()) << interval.status();
  BillingPeriod p = PeriodAt(T(c.anchor), *interval, T(c.now));
  EXPECT_EQ(FormatRfc3339(p.start), c.start);
  EXPECT_EQ(FormatRfc3339(p.end), c.end);
  EXPECT_EQ(p.Label(), c.label);
  EXPECT_TRUE(p.Contains(T(c.now)));
}

INSTANTIATE_TEST_SUITE_P(Seeds, GoldenPeriods, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(BillingPeriod, ConsecutivePeriodsTileTheTimeLine) {
  std::mt19937_64 rng(42);
  const absl::Time base = T("2023-01-01T00:00:00Z");
  for (const char* iv : {"month", "30d", "1d"}) {
    for (const char* mode : {"subscription", "calendar"}) {
      auto interval = *ParseBillingInterval(iv, mode);
      for (int i = 0; i < 300; ++i) {
        absl::Time anchor = base + absl::Seconds(static_cast<int64_t>(rng() % (3 * 365 * 86400LL)));
        absl::Time now = anchor + absl::Seconds(static_cast<int64_t>(rng() % (3 * 365 * 86400LL)));
        BillingPeriod p = PeriodAt(anchor, interval, now);
        ASSERT_LE(p.start, now);
        ASSERT_LT(now, p.end);
        BillingPeriod next = PeriodAt(anchor, interval, p.end);
        ASSERT_EQ(next.start, p.end);
        ASSERT_EQ(next.index, p.index + 1);
        ASSERT_EQ(PeriodAt(anchor, interval, p.end - absl::Nanoseconds(1)), p);
      }
    }
  }
}

TEST(BillingPeriod, DatesAlwaysHaveFourDigitYears) {
  EXPECT_EQ(FormatDate(absl::CivilDay(999, 1, 2)), "0999-01-02");
  EXPECT_EQ(FormatDate(absl::CivilDay(2026, 11, 29)), "2026-11-29");
}

TEST(BillingPeriod, RejectsBadIntervals) {
  EXPECT_FALSE(ParseBillingInterval("week", "subscription").ok());
  EXPECT_FALSE(ParseBillingInterval("0d", "subscription").ok());
  EXPECT_FALSE(ParseBillingInterval("d", "subscription").ok());
  EXPECT_FALSE(ParseBillingInterval("-3d", "subscription").ok());
  EXPECT_FALSE(ParseBillingInterval("month", "lunar").ok());
  EXPECT_TRUE(ParseBillingInterval("30d", "calendar").ok());
}

TEST(BillingPeriod, ParsesRfc3339WithOffsets) {
  EXPECT_EQ(FormatRfc3339(T("2026-02-01T02:00:00+02:00")), "2026-02-01T00:00:00Z");
  EXPECT_FALSE(ParseRfc3339("2026-02-01").ok());
  EXPECT_FALSE(ParseRfc3339("yesterday").ok());
}

// FormatRfc3339 keeps the last instant it formatted on the thread: a different
// second, a fraction of the same second and the infinite instants each still
// get their own text.
TEST(BillingPeriod, FormatsEachInstantAfterAnother) {
  const absl::Time t = absl::FromUnixSeconds(1'780'000'000);
  EXPECT_EQ(FormatRfc3339(t), "2026-05-28T20:26:40Z");
  EXPECT_EQ(FormatRfc3339(t + absl::Milliseconds(999)), "2026-05-28T20:26:40Z");
  EXPECT_EQ(FormatRfc3339(t + absl::Seconds(1)), "2026-05-28T20:26:41Z");
  EXPECT_EQ(FormatRfc3339(t - absl::Milliseconds(1)), "2026-05-28T20:26:39Z");
  EXPECT_EQ(FormatRfc3339(absl::InfiniteFuture()), "infinite-future");
  EXPECT_EQ(FormatRfc3339(t), "2026-05-28T20:26:40Z");
  std::string other;
  std::thread([&] { other = FormatRfc3339(t + absl::Hours(1)); }).join();
  EXPECT_EQ(other, "2026-05-28T21:26:40Z");
  EXPECT_EQ(FormatRfc3339(t), "2026-05-28T20:26:40Z");
}

// Found by period_fuzzer: absl also parses years like -5 or 292277026596,
// whose fixed-length periods overflowed the period index.
TEST(BillingPeriod, Rfc3339YearsAreFourDigits) {
  EXPECT_FALSE(ParseRfc3339("292277026596-12-04T15:30:07Z").ok());
  EXPECT_FALSE(ParseRfc3339("-0001-01-01T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("0000-12-31T23:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("0001-01-01T00:30:00+01:00").ok());  // year 0 in UTC
  EXPECT_FALSE(ParseRfc3339("9999-12-31T23:30:00-01:00").ok());  // year 10000 in UTC
  EXPECT_EQ(FormatRfc3339(T("0001-01-01T00:00:00Z")), "0001-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(T("9999-12-31T23:59:59Z")), "9999-12-31T23:59:59Z");
}

TEST(BillingPeriod, ExtremeInstantsSaturateWithoutOverflow) {
  auto days = *ParseBillingInterval("30d", "subscription");
  const absl::Time far_past = absl::FromUnixSeconds(std::numeric_limits<int64_t>::min());
  const absl::Time far_future = absl::FromUnixSeconds(std::numeric_limits<int64_t>::max());
  BillingPeriod p = PeriodAt(far_future, days, far_past);
  EXPECT_LE(p.index, 0);
  p = PeriodAt(far_past, days, far_future);
  EXPECT_GE(p.index, 0);
}

}  // namespace
}  // namespace quotum
