#include "quotum/core/thresholds.h"

#include <gtest/gtest.h>

namespace quotum {
namespace {

const std::vector<int> kDefault{80, 90, 100};

TEST(ThresholdsTest, ACrossingIsFromBelowToAtOrAbove) {
  EXPECT_EQ(CrossedThresholds(799, 800, 1000, kDefault), std::vector<int>{80});
  EXPECT_TRUE(CrossedThresholds(800, 801, 1000, kDefault).empty());  // already past 80
  EXPECT_TRUE(CrossedThresholds(700, 799, 1000, kDefault).empty());
  EXPECT_EQ(CrossedThresholds(899, 1000, 1000, kDefault), (std::vector<int>{90, 100}));
}

TEST(ThresholdsTest, OneChargeOverSeveralThresholdsCrossesEach) {
  EXPECT_EQ(CrossedThresholds(500, 1000, 1000, kDefault), (std::vector<int>{80, 90, 100}));
  EXPECT_EQ(CrossedThresholds(0, 5000, 1000, kDefault), (std::vector<int>{80, 90, 100}));
}

TEST(ThresholdsTest, PercentagesRoundUpToTheNextWholeUnit) {
  // 80 % of 7 is 5.6: the sixth unit reaches it.
  EXPECT_TRUE(CrossedThresholds(4, 5, 7, kDefault).empty());
  EXPECT_EQ(CrossedThresholds(5, 6, 7, kDefault), std::vector<int>{80});
}

TEST(ThresholdsTest, NoLimitOrNoGrowthCrossesNothing) {
  EXPECT_TRUE(CrossedThresholds(0, 10, 0, kDefault).empty());
  EXPECT_TRUE(CrossedThresholds(900, 900, 1000, kDefault).empty());
  EXPECT_TRUE(CrossedThresholds(950, 10, 1000, kDefault).empty());
}

TEST(ThresholdsTest, LargeCountersStayExact) {
  const uint64_t limit = (uint64_t{1} << 53) - 1;
  const uint64_t eighty = limit / 100 * 80 + (limit % 100 * 80 + 99) / 100;  // ceil(0.8 limit)
  EXPECT_EQ(CrossedThresholds(eighty - 1, eighty, limit, kDefault), std::vector<int>{80});
  EXPECT_TRUE(CrossedThresholds(eighty - 2, eighty - 1, limit, kDefault).empty());
}

TEST(ThresholdsTest, AThresholdHoldsWhileUsageStaysAtOrAboveIt) {
  EXPECT_TRUE(ThresholdHolds(800, 1000, 80));
  EXPECT_FALSE(ThresholdHolds(800, 2000, 80));  // the limit grew
  EXPECT_FALSE(ThresholdHolds(5, 0, 80));
}

}  // namespace
}  // namespace quotum
