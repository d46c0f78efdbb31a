// Forecast of period-end usage (issue: forecast in usage/current): synthetic
// daily series whose projections are worked out by hand in the comments.
#include "quotum/core/forecast.h"

#include <cmath>

#include "gtest/gtest.h"
#include "support/time_literal.h"

namespace quotum {
namespace {

// A 30-day period starting on a Sunday at midnight UTC.
ForecastInput November(const char* now, uint64_t used, std::vector<uint64_t> daily,
                       std::optional<uint64_t> limit = std::nullopt) {
  return {T("2026-11-01T00:00:00Z"), T("2026-12-01T00:00:00Z"), T(now), used, limit,
          std::move(daily)};
}

ForecastInput Flat100(std::optional<uint64_t> limit) {
  return November("2026-11-11T00:00:00Z", 1000, std::vector<uint64_t>(10, 100), limit);
}

// Weeks starting on Saturday: days 0 and 1 of each week are the weekend.
std::vector<uint64_t> Weeks(int days, uint64_t weekday, uint64_t weekend) {
  std::vector<uint64_t> daily;
  for (int i = 0; i < days; ++i) daily.push_back(i % 7 < 2 ? weekend : weekday);
  return daily;
}

// 2026-11-07 is a Saturday; 28 complete days later, 2026-12-05 is one too, and
// the two days left of the period are a weekend.
ForecastInput FourWeeksThenAWeekend(uint64_t weekday, uint64_t weekend) {
  return {T("2026-11-07T00:00:00Z"),
          T("2026-12-07T00:00:00Z"),
          T("2026-12-05T00:00:00Z"),
          4 * (5 * weekday + 2 * weekend),
          std::nullopt,
          Weeks(28, weekday, weekend)};
}

ForecastOptions NoSeasonality() {
  ForecastOptions o;
  o.min_days_for_weekday = 1000;
  return o;
}

TEST(ProjectUsage, NoDataProjectsNothingAndReachesNothing) {
  const Forecast f = ProjectUsage(November("2026-11-11T12:00:00Z", 0, {}, 1000));
  EXPECT_EQ(f.method, "no_data");
  EXPECT_EQ(f.projected_period_end, 0u);
  EXPECT_EQ(f.projected_percentage, 0.0);
  EXPECT_EQ(f.limit_reached_at, std::nullopt);
  EXPECT_FALSE(ForecastExceedsLimit(f));
  // Ten days of zeros are no data either.
  EXPECT_EQ(ProjectUsage(November("2026-11-11T12:00:00Z", 0, std::vector<uint64_t>(11, 0))).method,
            "no_data");
}

TEST(ProjectUsage, OnePartialDayProjectsTodaysPace) {
  // 60 units in the first 6 hours: 240 a day; 60 + 240 x 29.75 days = 7200.
  // The limit 3600 is reached when 60 + 240 d = 3600: d = 14.75 days after
  // 2026-11-01T06:00, i.e. 2026-11-16T00:00.
  const Forecast f = ProjectUsage(November("2026-11-01T06:00:00Z", 60, {60}, 3600));
  EXPECT_EQ(f.method, "today_pace");
  EXPECT_EQ(f.projected_period_end, 7200u);
  EXPECT_EQ(f.projected_percentage, 200.0);
  ASSERT_TRUE(f.limit_reached_at.has_value());
  EXPECT_LE(absl::AbsDuration(*f.limit_reached_at - T("2026-11-16T00:00:00Z")), absl::Seconds(1));
  EXPECT_TRUE(ForecastExceedsLimit(f));
}

TEST(ProjectUsage, ThirtySecondsAfterMidnightCountsAtLeastAnHour) {
  // 5 units over (at least) 1 hour: 120 a day; 5 + 120 x (30 days - 30 s)
  // = 5 + 3600 - 0.04 = 3604.96, rounded to 3605.
  const Forecast f = ProjectUsage(November("2026-11-01T00:00:30Z", 5, {5}));
  EXPECT_EQ(f.method, "today_pace");
  EXPECT_EQ(f.projected_period_end, 3605u);
  // At the period's very first instant likewise: 5 + 120 x 30 = 3605.
  EXPECT_EQ(ProjectUsage(November("2026-11-01T00:00:00Z", 5, {5})).projected_period_end, 3605u);
}

TEST(ProjectUsage, AnEmptySeriesFallsBackToTheCountersPace) {
  // The aggregates lag: 1000 units in 10 days is 100 a day; 1000 + 100 x 20.
  const Forecast f = ProjectUsage(November("2026-11-11T00:00:00Z", 1000, {}));
  EXPECT_EQ(f.method, "today_pace");
  EXPECT_EQ(f.projected_period_end, 3000u);
}

TEST(ProjectUsage, OneCompleteDayIsPooledWithToday) {
  // 100 yesterday and 50 in the first quarter of today: (100 + 50) / 1.25 =
  // 120 a day; 150 + 120 x 28.75 days = 3600.
  const Forecast f = ProjectUsage(November("2026-11-02T06:00:00Z", 150, {100, 50}));
  EXPECT_EQ(f.method, "ewma7+today");
  EXPECT_EQ(f.projected_period_end, 3600u);
  // Without today's entry in the series, today's units come from the counter.
  EXPECT_EQ(ProjectUsage(November("2026-11-02T06:00:00Z", 150, {100})).projected_period_end, 3600u);
}

TEST(ProjectUsage, AFlatTenantProjectsItsDailyUnitsForTheRestOfThePeriod) {
  // 100 a day for 10 days, 20 days left: 1000 + 100 x 20 = 3000.
  const Forecast f = ProjectUsage(Flat100(std::nullopt));
  EXPECT_EQ(f.method, "ewma7");
  EXPECT_EQ(f.projected_period_end, 3000u);
  EXPECT_EQ(f.projected_percentage, std::nullopt);
  // Half way through day 10 with 50 so far (ignored: partial): 1050 + 100 x 19.5.
  std::vector<uint64_t> daily(10, 100);
  daily.push_back(50);
  EXPECT_EQ(ProjectUsage(November("2026-11-11T12:00:00Z", 1050, daily)).projected_period_end,
            3000u);
}

TEST(ProjectUsage, AGrowingTenantProjectsMoreThanAFlatOneWithTheSameTotal) {
  // 10, 30, ..., 190: 1000 in 10 days, as Flat100. The weights 2^(-k/7) (k
  // days before yesterday) give a rate of 116.07 a day: 1000 + 20 x 116.07 =
  // 3321.5 -> 3321 or 3322; the flat tenant projects 3000.
  std::vector<uint64_t> daily;
  for (uint64_t i = 0; i < 10; ++i) daily.push_back(10 + 20 * i);
  const Forecast growing = ProjectUsage(November("2026-11-11T00:00:00Z", 1000, daily));
  EXPECT_EQ(growing.method, "ewma7");
  EXPECT_GT(growing.projected_period_end, ProjectUsage(Flat100(std::nullopt)).projected_period_end);
  EXPECT_NEAR(static_cast<double>(growing.projected_period_end), 3321.5, 0.5);
}

TEST(ProjectUsage, AnAnchoredPeriodsPartialFirstDayIsNotARate) {
  // From 08:30: day 0 holds 30 units of 15.5 hours; days 1-3 are complete at
  // 100. At 2026-11-14T00:00, 26 days 8.5 hours are left: 330 + 100 x 26.354
  // = 2965.4 -> 2965 (with day 0 as a rate it would be less).
  const ForecastInput in{T("2026-11-10T08:30:00Z"),
                         T("2026-12-10T08:30:00Z"),
                         T("2026-11-14T00:00:00Z"),
                         330,
                         std::nullopt,
                         {30, 100, 100, 100}};
  const Forecast f = ProjectUsage(in);
  EXPECT_EQ(f.method, "ewma7");
  EXPECT_EQ(f.projected_period_end, 2965u);
  // The unrounded 2965.4 passes a limit of 2965 six minutes before the end,
  // but the forecast says what its integers say: not exceeded, not reached.
  ForecastInput limited = in;
  limited.limit = 2965;
  const Forecast at = ProjectUsage(limited);
  EXPECT_FALSE(ForecastExceedsLimit(at));
  EXPECT_EQ(at.limit_reached_at, std::nullopt);
}

TEST(ProjectUsage, WeekdaySeasonalityFromFourteenCompleteDays) {
  auto method_after = [](int days) {
    return ProjectUsage({T("2026-11-07T00:00:00Z"), T("2026-12-07T00:00:00Z"),
                         T("2026-11-07T00:00:00Z") + absl::Hours(24 * days), 1, std::nullopt,
                         Weeks(days, 120, 50)})
        .method;
  };
  EXPECT_EQ(method_after(13), "ewma7");
  EXPECT_EQ(method_after(14), "ewma7+weekday");
}

TEST(ProjectUsage, APerfectlySeasonalSeriesProjectsItsWeekendExactly) {
  // Weekdays 120, weekends 50: mean 100, factors 1.2 and 0.5, level 100
  // whatever the weights; the weekend left adds 50 + 50 to 2800: 2900.
  const Forecast f = ProjectUsage(FourWeeksThenAWeekend(120, 50));
  EXPECT_EQ(f.method, "ewma7+weekday");
  EXPECT_EQ(f.projected_period_end, 2900u);
  // Without seasonality the last five days (weekdays) weigh most: the
  // weighted mean is 104.67, 2800 + 2 x 104.67 = 3009.3.
  const Forecast plain = ProjectUsage(FourWeeksThenAWeekend(120, 50), NoSeasonality());
  EXPECT_EQ(plain.method, "ewma7");
  EXPECT_EQ(plain.projected_period_end, 3009u);
}

TEST(ProjectUsage, WeekendsAtZeroProjectLessForAWeekendThanWithoutSeasonality) {
  // Weekdays 100, weekends 0: factors 1.4 and 0 -> clamped to 0.5. The level
  // sum(w x) / sum(w factor) is 64.93 (at most 100 / 1.4 = 71.4), so the
  // weekend left adds 2 x 0.5 x 64.93: 2064.9 -> 2065. Without seasonality:
  // 2000 + 2 x 78.10 = 2156.2 -> 2156.
  const Forecast f = ProjectUsage(FourWeeksThenAWeekend(100, 0));
  const Forecast plain = ProjectUsage(FourWeeksThenAWeekend(100, 0), NoSeasonality());
  EXPECT_EQ(f.method, "ewma7+weekday");
  EXPECT_LT(f.projected_period_end, plain.projected_period_end);
  EXPECT_EQ(f.projected_period_end, 2065u);
  EXPECT_EQ(plain.projected_period_end, 2156u);
}

TEST(ProjectUsage, AFlatTenantReachesItsLimitOnTheDayTheArithmeticSays) {
  // 1000 + 100 d = 2000: d = 10 days after 2026-11-11, i.e. 2026-11-21T00:00.
  const Forecast f = ProjectUsage(Flat100(2000));
  ASSERT_TRUE(f.limit_reached_at.has_value());
  EXPECT_LE(absl::AbsDuration(*f.limit_reached_at - T("2026-11-21T00:00:00Z")), absl::Hours(1));
  EXPECT_EQ(f.projected_percentage, 150.0);
  EXPECT_TRUE(ForecastExceedsLimit(f));
}

TEST(ProjectUsage, EndingExactlyAtTheLimitNeitherExceedsNorReachesIt) {
  const Forecast at = ProjectUsage(Flat100(3000));
  EXPECT_EQ(at.projected_percentage, 100.0);
  EXPECT_FALSE(ForecastExceedsLimit(at));
  EXPECT_EQ(at.limit_reached_at, std::nullopt);
  // One unit less: 1000 + 100 d = 2999 at d = 19.99 days, 14.4 minutes before
  // the end. The percentage rounds to 100.0, the integers still exceed.
  const Forecast below = ProjectUsage(Flat100(2999));
  EXPECT_EQ(below.projected_percentage, 100.0);
  EXPECT_TRUE(ForecastExceedsLimit(below));
  ASSERT_TRUE(below.limit_reached_at.has_value());
  EXPECT_LE(
      absl::AbsDuration(*below.limit_reached_at - (T("2026-12-01T00:00:00Z") - absl::Seconds(864))),
      absl::Seconds(1));
}

TEST(ProjectUsage, AlreadyOverTheLimitHasNoReachingInstant) {
  // 250 a day: 2500 now, 2500 + 250 x 20 = 7500, 375 % of 2000.
  const Forecast f =
      ProjectUsage(November("2026-11-11T00:00:00Z", 2500, std::vector<uint64_t>(10, 250), 2000));
  EXPECT_EQ(f.projected_period_end, 7500u);
  EXPECT_EQ(f.projected_percentage, 375.0);
  EXPECT_EQ(f.limit_reached_at, std::nullopt);
  EXPECT_TRUE(ForecastExceedsLimit(f));
}

TEST(ProjectUsage, AnUnlimitedMeterHasNoPercentageAndNeverExceeds) {
  const Forecast f = ProjectUsage(Flat100(std::nullopt));
  EXPECT_EQ(f.projected_percentage, std::nullopt);
  EXPECT_EQ(f.limit_reached_at, std::nullopt);
  EXPECT_FALSE(ForecastExceedsLimit(f));
}

TEST(ProjectUsage, AtOrAfterThePeriodEndTheProjectionIsTheCounter) {
  const Forecast f =
      ProjectUsage(November("2026-12-03T00:00:00Z", 3000, std::vector<uint64_t>(30, 100), 2000));
  EXPECT_EQ(f.projected_period_end, 3000u);
  EXPECT_EQ(f.limit_reached_at, std::nullopt);
}

// Meters 0 (messages_sent) and 5 (ai_tokens) of the built-in catalog.
constexpr MeterId kMessages = 0, kAiTokens = 5;

Plan MakePlan(const char* name, int64_t price_cents, std::optional<uint64_t> messages,
              std::optional<uint64_t> ai_tokens = std::nullopt) {
  Plan p;
  p.name = name;
  p.price_cents = price_cents;
  p.limits.assign(Catalog::BuiltinMeters().size(), std::nullopt);
  p.limits[kMessages] = messages;
  p.limits[kAiTokens] = ai_tokens;
  return p;
}

Catalog Plans() {
  Catalog c;
  c.meters = Catalog::BuiltinMeters();
  // Out of price order on purpose; enterprise is unlimited but by contract.
  c.plans = {MakePlan("business", 9900, 20000), MakePlan("starter", 0, 1000),
             MakePlan("enterprise", -1, std::nullopt), MakePlan("pro", 2900, 5000, 100000),
             MakePlan("growth", 4900, 5000)};
  Plan weekly = MakePlan("weekly", 500, 50000);
  weekly.interval = {BillingInterval::Unit::kDays, 7, false};
  c.plans.push_back(weekly);
  c.Index();
  return c;
}

TEST(RecommendPlan, TheCheapestPlanThatFitsWithTwentyPercentHeadroom) {
  const Catalog c = Plans();
  const Plan& starter = *c.FindPlan("starter");
  // 4166 x 1.2 = 4999.2 -> 5000 fits pro; 4167 x 1.2 = 5000.4 needs business.
  EXPECT_EQ(RecommendPlan(c, starter, {{kMessages, 4166}}), "pro");
  EXPECT_EQ(RecommendPlan(c, starter, {{kMessages, 4167}}), "business");
  // 1000 fits starter's 1000 only without headroom.
  EXPECT_EQ(RecommendPlan(c, starter, {{kMessages, 1000}}), "pro");
  EXPECT_EQ(RecommendPlan(c, starter, {{kMessages, 1000}}, 0), "starter");
}

TEST(RecommendPlan, EveryMeterMustFit) {
  const Catalog c = Plans();
  // Pro caps ai_tokens at 100000; growth (dearer) leaves them unlimited.
  EXPECT_EQ(RecommendPlan(c, *c.FindPlan("starter"), {{kMessages, 3000}, {kAiTokens, 90000}}),
            "growth");
  EXPECT_EQ(RecommendPlan(c, *c.FindPlan("starter"), {{kMessages, 3000}, {kAiTokens, 80000}}),
            "pro");
}

TEST(RecommendPlan, TheCurrentPlanStaysWhenItFits) {
  const Catalog c = Plans();
  EXPECT_EQ(RecommendPlan(c, *c.FindPlan("business"), {{kMessages, 100}}), "business");
  EXPECT_EQ(RecommendPlan(c, *c.FindPlan("enterprise"), {{kMessages, 1000000}}), "enterprise");
}

TEST(RecommendPlan, ContractPlansAndOtherIntervalsAreNeverRecommended) {
  const Catalog c = Plans();
  // Only enterprise (by contract) and weekly (another interval) hold 30000.
  EXPECT_EQ(RecommendPlan(c, *c.FindPlan("starter"), {{kMessages, 30000}}), std::nullopt);
  EXPECT_EQ(RecommendPlan(c, *c.FindPlan("weekly"), {{kMessages, 60000}}), std::nullopt);
}

}  // namespace
}  // namespace quotum
