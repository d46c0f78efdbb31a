// Delivery retry backoff: exponential, capped, with equal jitter.
#include "quotum/core/retry_policy.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace quotum {
namespace {

constexpr uint64_t kMax = UINT64_MAX;
const absl::Duration kBase = absl::Seconds(10);
const absl::Duration kCap = absl::Hours(1);

TEST(RetryDelayTest, LowestRandomGivesHalfTheCeiling) {
  EXPECT_EQ(RetryDelay(1, kBase, kCap, 0), absl::Seconds(5));
  EXPECT_EQ(RetryDelay(2, kBase, kCap, 0), absl::Seconds(10));
  EXPECT_EQ(RetryDelay(3, kBase, kCap, 0), absl::Seconds(20));
  EXPECT_EQ(RetryDelay(5, kBase, kCap, 0), absl::Seconds(80));
}

TEST(RetryDelayTest, HighestRandomGivesNearlyTheCeiling) {
  const absl::Duration top = RetryDelay(3, kBase, kCap, kMax);
  EXPECT_LE(top, absl::Seconds(40));
  EXPECT_GT(top, absl::Seconds(40) - absl::Nanoseconds(2));
}

TEST(RetryDelayTest, RandomPicksProportionallyInTheUpperHalf) {
  EXPECT_EQ(RetryDelay(1, kBase, kCap, uint64_t{1} << 63), absl::Milliseconds(7500));
  EXPECT_EQ(RetryDelay(1, kBase, kCap, uint64_t{1} << 62), absl::Milliseconds(6250));
}

TEST(RetryDelayTest, CappedAndNeverOverflowing) {
  EXPECT_EQ(RetryDelay(9, kBase, kCap, 0), absl::Seconds(1280));  // ceiling 2560 s
  EXPECT_EQ(RetryDelay(10, kBase, kCap, 0), absl::Minutes(30));   // 5120 s > 1 h
  EXPECT_EQ(RetryDelay(100, kBase, kCap, 0), absl::Minutes(30));
  EXPECT_EQ(RetryDelay(INT32_MAX, kBase, kCap, 0), absl::Minutes(30));
  EXPECT_LE(RetryDelay(INT32_MAX, kBase, kCap, kMax), kCap);
  EXPECT_EQ(RetryDelay(70, absl::Seconds(1), absl::InfiniteDuration(), 0),
            absl::Nanoseconds(INT64_MAX / 2));
}

TEST(RetryDelayTest, GrowsWithAttemptsForAnyRandom) {
  for (uint64_t random : {uint64_t{0}, uint64_t{12345}, kMax / 3, kMax}) {
    absl::Duration previous = absl::ZeroDuration();
    for (int attempt = 1; attempt <= 12; ++attempt) {
      const absl::Duration d = RetryDelay(attempt, kBase, kCap, random);
      EXPECT_GE(d, previous) << attempt;
      previous = d;
    }
  }
}

TEST(RetryDelayTest, DegenerateInputs) {
  EXPECT_EQ(RetryDelay(0, kBase, kCap, 0), RetryDelay(1, kBase, kCap, 0));
  EXPECT_EQ(RetryDelay(-5, kBase, kCap, kMax), RetryDelay(1, kBase, kCap, kMax));
  EXPECT_EQ(RetryDelay(3, absl::ZeroDuration(), kCap, kMax), absl::ZeroDuration());
  EXPECT_EQ(RetryDelay(3, absl::Seconds(-1), kCap, kMax), absl::ZeroDuration());
  EXPECT_EQ(RetryDelay(1, absl::Hours(2), kCap, 0), absl::Minutes(30));
  EXPECT_EQ(RetryDelay(1, kBase, absl::ZeroDuration(), kMax), absl::ZeroDuration());
}

TEST(RetryDelayTest, SameArgumentsSameDelay) {
  EXPECT_EQ(RetryDelay(4, kBase, kCap, 987654321), RetryDelay(4, kBase, kCap, 987654321));
  EXPECT_NE(RetryDelay(4, kBase, kCap, 0), RetryDelay(4, kBase, kCap, kMax / 2));
}

}  // namespace
}  // namespace quotum
