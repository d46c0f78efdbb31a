#include "quotum/core/quota.h"

#include <limits>

#include "gtest/gtest.h"

namespace quotum {
namespace {

using V = QuotaOutcome::Verdict;
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

QuotaOutcome Decide(uint64_t used, std::optional<uint64_t> limit, uint64_t qty,
                    bool partial = false, OnLimit policy = OnLimit::kReject) {
  return DecideQuota({used, limit, qty, partial, policy});
}

TEST(Quota, AdmitsUpToTheLimitExactly) {
  auto below = Decide(998, 1000, 1);
  EXPECT_EQ(below.verdict, V::kAdmitted);
  EXPECT_EQ(below.remaining, 1u);
  auto at = Decide(999, 1000, 1);
  EXPECT_EQ(at.verdict, V::kAdmitted);
  EXPECT_EQ(at.remaining, 0u);
  auto over = Decide(1000, 1000, 1);
  EXPECT_EQ(over.verdict, V::kDenied);
  EXPECT_EQ(over.admitted, 0u);
}

TEST(Quota, AllOrNothingWithoutPartial) {
  auto d = Decide(9800, 10000, 500);
  EXPECT_EQ(d.verdict, V::kDenied);
  EXPECT_EQ(d.remaining, 200u);
}

TEST(Quota, PartialAdmitsWhatIsLeft) {
  auto d = Decide(9800, 10000, 500, true);
  EXPECT_EQ(d.verdict, V::kAdmitted);
  EXPECT_EQ(d.admitted, 200u);
  EXPECT_EQ(d.remaining, 0u);
  EXPECT_EQ(Decide(10000, 10000, 5, true).verdict, V::kDenied);
}

TEST(Quota, SoftLimitAdmitsAndFlagsOverage) {
  auto d = Decide(990, 1000, 25, false, OnLimit::kAllow);
  EXPECT_EQ(d.verdict, V::kAdmitted);
  EXPECT_EQ(d.admitted, 25u);
  EXPECT_EQ(d.overage, 15u);
}

TEST(Quota, UnlimitedAdmitsEverything) {
  auto d = Decide(123456789, std::nullopt, 1000000);
  EXPECT_EQ(d.verdict, V::kAdmitted);
  EXPECT_EQ(d.remaining, kMax);
}

TEST(Quota, OverflowIsRefusedNotWrapped) {
  EXPECT_EQ(Decide(1, std::nullopt, kMax).verdict, V::kOverflow);
  EXPECT_EQ(Decide(0, std::nullopt, kMax).verdict, V::kOverflow);
  EXPECT_EQ(Decide(kMax, 10, 1, true).verdict, V::kOverflow);
}

TEST(Quota, CountersStopAtTheLargestValueTheStoresHold) {
  EXPECT_EQ(Decide(0, std::nullopt, kMaxCounter).verdict, V::kAdmitted);
  EXPECT_EQ(Decide(1, std::nullopt, kMaxCounter).verdict, V::kOverflow);
  EXPECT_EQ(Decide(kMaxCounter, std::nullopt, 1).verdict, V::kOverflow);
  EXPECT_EQ(Decide(kMaxCounter - 5, std::nullopt, 5).verdict, V::kAdmitted);
  uint64_t automatic = kMaxCounter - 1;
  SaturatingIncrement(automatic);
  SaturatingIncrement(automatic);
  EXPECT_EQ(automatic, kMaxCounter);
}

TEST(Quota, ZeroLimitDeniesEverything) { EXPECT_EQ(Decide(0, 0, 1).verdict, V::kDenied); }

TEST(Quota, UsagePercentageRoundsToOneDecimal) {
  EXPECT_DOUBLE_EQ(UsagePercentage(9800, 10000), 98.0);
  EXPECT_DOUBLE_EQ(UsagePercentage(7823, 10000), 78.2);
  EXPECT_DOUBLE_EQ(UsagePercentage(1, 3), 33.3);
  EXPECT_DOUBLE_EQ(UsagePercentage(5, std::nullopt), 0.0);
  EXPECT_DOUBLE_EQ(UsagePercentage(0, 0), 0.0);
  EXPECT_DOUBLE_EQ(UsagePercentage(1200, 1000), 120.0);
}

TEST(Quota, Bands) {
  ColourBands moltflow;  // 70 / 90
  EXPECT_EQ(BandFor(69.9, moltflow), Band::kGreen);
  EXPECT_EQ(BandFor(70.0, moltflow), Band::kYellow);
  EXPECT_EQ(BandFor(90.0, moltflow), Band::kRed);
  ColourBands xpressbot{50, 80};
  EXPECT_EQ(BandFor(50.0, xpressbot), Band::kYellow);
  EXPECT_EQ(BandFor(80.1, xpressbot), Band::kRed);
}

}  // namespace
}  // namespace quotum
