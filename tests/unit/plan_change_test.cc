// Golden proration cases (issue 11): the kind of a plan change and what it
// costs at an instant of the period.
#include "quotum/core/plan_change.h"

#include "gtest/gtest.h"
#include "support/time_literal.h"

namespace quotum {
namespace {

BillingPeriod Month(const char* start, const char* end) { return {T(start), T(end), 0}; }

constexpr int64_t kPro = 2900, kBusiness = 9900, kStarter = 0;

TEST(Proration, HalfOfAThirtyDayPeriodProToBusinessIs3500) {
  const BillingPeriod nov = Month("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
  EXPECT_EQ(ProrationCents(kPro, kBusiness, nov, T("2026-11-16T00:00:00Z")), 3500);
}

TEST(Proration, TheFirstSecondChargesTheWholeDifferenceAndTheLastAlmostNothing) {
  const BillingPeriod nov = Month("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
  EXPECT_EQ(ProrationCents(kPro, kBusiness, nov, nov.start), 7000);
  // One second of 2,592,000 left: 7000 / 2592000 of a cent, rounded toward zero.
  EXPECT_EQ(ProrationCents(kPro, kBusiness, nov, nov.end - absl::Seconds(1)), 0);
  // 371 seconds left is the first whole cent: 7000 * 371 / 2592000 = 1.0019.
  EXPECT_EQ(ProrationCents(kPro, kBusiness, nov, nov.end - absl::Seconds(371)), 1);
  EXPECT_EQ(ProrationCents(kPro, kBusiness, nov, nov.end - absl::Seconds(370)), 0);
}

TEST(Proration, HalfOfEveryMonthLengthIsHalfTheDifference) {
  // 28, 29, 30 and 31 days, each at its middle.
  for (auto [start, middle, end] :
       {std::tuple{"2027-02-01T00:00:00Z", "2027-02-15T00:00:00Z", "2027-03-01T00:00:00Z"},
        {"2028-02-01T00:00:00Z", "2028-02-15T12:00:00Z", "2028-03-01T00:00:00Z"},
        {"2026-04-01T00:00:00Z", "2026-04-16T00:00:00Z", "2026-05-01T00:00:00Z"},
        {"2026-03-01T00:00:00Z", "2026-03-16T12:00:00Z", "2026-04-01T00:00:00Z"}}) {
    EXPECT_EQ(ProrationCents(kPro, kBusiness, Month(start, end), T(middle)), 3500) << start;
  }
}

TEST(Proration, FreeToPaidChargesThePaidPlansShare) {
  const BillingPeriod nov = Month("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
  // Ten of thirty days left: 2900 / 3 = 966.67, rounded toward zero.
  EXPECT_EQ(ProrationCents(kStarter, kPro, nov, T("2026-11-21T00:00:00Z")), 966);
}

TEST(Proration, AThirtyDayIntervalAndInstantsOutsideThePeriod) {
  const BillingPeriod p{T("2026-11-10T08:30:00Z"), T("2026-12-10T08:30:00Z"), 3};
  EXPECT_EQ(ProrationCents(kPro, kBusiness, p, T("2026-11-25T08:30:00Z")), 3500);
  EXPECT_EQ(ProrationCents(kPro, kBusiness, p, p.start - absl::Hours(1)), 7000);
  EXPECT_EQ(ProrationCents(kPro, kBusiness, p, p.end + absl::Hours(1)), 0);
}

TEST(Proration, ADowngradeWouldBeACreditAndAContractPriceCountsAsZero) {
  const BillingPeriod nov = Month("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
  EXPECT_EQ(ProrationCents(kBusiness, kPro, nov, T("2026-11-16T00:00:00Z")), -3500);
  EXPECT_EQ(ProrationCents(-1, kPro, nov, nov.start), 2900);
}

TEST(PlanChangeKind, ByPriceWithContractPlansOnTop) {
  Plan starter, pro, business, pro_twin, enterprise;
  starter.name = "starter";
  pro.name = "pro";
  pro.price_cents = kPro;
  business.name = "business";
  business.price_cents = kBusiness;
  pro_twin.name = "pro_twin";
  pro_twin.price_cents = kPro;
  enterprise.name = "enterprise";
  enterprise.price_cents = -1;
  EXPECT_EQ(KindOfChange(pro, business), PlanChangeKind::kUpgrade);
  EXPECT_EQ(KindOfChange(business, pro), PlanChangeKind::kDowngrade);
  EXPECT_EQ(KindOfChange(pro, pro), PlanChangeKind::kSame);
  EXPECT_EQ(KindOfChange(pro, pro_twin), PlanChangeKind::kUpgrade);
  EXPECT_EQ(KindOfChange(starter, enterprise), PlanChangeKind::kUpgrade);
  EXPECT_EQ(KindOfChange(enterprise, business), PlanChangeKind::kDowngrade);
  EXPECT_EQ(PlanChangeKindName(PlanChangeKind::kDowngrade), "downgrade");
}

}  // namespace
}  // namespace quotum
