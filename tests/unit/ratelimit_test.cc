#include <boost/json.hpp>
#include <deque>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "gtest/gtest.h"
#include "quotum/ratelimit/limiter.h"
#include "quotum/ratelimit/rules.h"

namespace quotum::ratelimit {
namespace {

constexpr int64_t kMs = 1'000'000;
// A realistic epoch offset, aligned to a whole second, so vectors run at real timestamps.
constexpr int64_t kBase = 1'796'724'000LL * 1'000'000'000LL;

TEST(RateLimitGolden, EveryVectorMatches) {
  std::ifstream in(QUOTUM_GOLDEN_DIR "/ratelimit.json");
  ASSERT_TRUE(in) << "missing golden file";
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = boost::json::parse(ss.str());
  int checked = 0;
  for (const auto& c : doc.at("cases").as_array()) {
    const std::string name(c.at("name").as_string());
    Rule rule{AlgorithmFromName(c.at("algorithm").as_string()).value(),
              c.at("limit").to_number<uint64_t>(), c.at("window_ms").to_number<int64_t>() * kMs};
    State state;
    int i = 0;
    for (const auto& step : c.at("steps").as_array()) {
      SCOPED_TRACE(name + " step " + std::to_string(i++));
      const int64_t now = kBase + step.at("t_ms").to_number<int64_t>() * kMs;
      Result r = Decide(rule, state, now, step.at("cost").to_number<uint64_t>());
      EXPECT_EQ(r.allowed, step.at("allowed").as_bool());
      const auto& o = step.as_object();
      if (o.contains("remaining")) {
        EXPECT_EQ(r.remaining, o.at("remaining").to_number<uint64_t>());
      }
      if (o.contains("reset_ms")) {
        EXPECT_EQ(r.reset_ns, o.at("reset_ms").to_number<int64_t>() * kMs);
      }
      if (o.contains("retry_ns")) {
        EXPECT_EQ(r.retry_ns, o.at("retry_ns").to_number<int64_t>());
      } else {
        const int64_t retry = o.at("retry_ms").to_number<int64_t>();
        EXPECT_EQ(r.retry_ns, retry < 0 ? -1 : retry * kMs);
      }
      if (r.allowed) state = r.next;
      ++checked;
    }
  }
  EXPECT_GE(checked, 19);
}

// A well-behaved client, polling a little slower than the rule's rate, is
// never refused by any algorithm at any limit of the demo catalog.
TEST(RateLimitGolden, SteadyPollersAreNeverRefused) {
  std::ifstream in(QUOTUM_GOLDEN_DIR "/ratelimit.json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = boost::json::parse(ss.str());
  int cases = 0;
  for (const auto& c : doc.at("steady_polls").as_array()) {
    Rule rule{AlgorithmFromName(c.at("algorithm").as_string()).value(),
              c.at("limit").to_number<uint64_t>(), c.at("window_ms").to_number<int64_t>() * kMs};
    const int64_t every = c.at("every_ms").to_number<int64_t>() * kMs;
    int64_t now = kBase + c.at("phase_ms").to_number<int64_t>() * kMs;
    State state;
    const int polls = c.at("polls").to_number<int>();
    for (int i = 0; i < polls; ++i, now += every) {
      Result r = Decide(rule, state, now, 1);
      ASSERT_TRUE(r.allowed) << boost::json::serialize(c) << ": poll " << i << " refused, retry in "
                             << r.retry_ns / kMs << " ms";
      state = r.next;
    }
    ++cases;
  }
  EXPECT_GE(cases, 81);
}

// Random traffic; returns the most units admitted in any window of length W
// (sliding over admission instants) and per aligned window.
struct Observed {
  uint64_t max_sliding = 0;
  uint64_t max_aligned = 0;
};

Observed Simulate(Algorithm algo, uint64_t limit, int64_t window, uint64_t seed) {
  Rule rule{algo, limit, window};
  State state;
  std::mt19937_64 rng(seed);
  int64_t now = kBase;
  std::deque<std::pair<int64_t, uint64_t>> admitted;
  uint64_t in_window = 0;
  std::map<int64_t, uint64_t> aligned;
  Observed o;
  for (int i = 0; i < 20000; ++i) {
    now += static_cast<int64_t>(rng() % (window / 8));
    uint64_t cost = 1 + rng() % 3;
    Result r = Decide(rule, state, now, cost);
    if (!r.allowed) continue;
    state = r.next;
    admitted.emplace_back(now, cost);
    in_window += cost;
    while (admitted.front().first <= now - window) {
      in_window -= admitted.front().second;
      admitted.pop_front();
    }
    o.max_sliding = std::max(o.max_sliding, in_window);
    uint64_t& a = aligned[(now - kBase) / window];
    a += cost;
    o.max_aligned = std::max(o.max_aligned, a);
  }
  return o;
}

TEST(RateLimitBounds, TokenBucketKeepsBurstPlusRefill) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto o = Simulate(Algorithm::kTokenBucket, 30, 60'000 * kMs, seed);
    EXPECT_LE(o.max_sliding, 2 * 30u);
    EXPECT_GE(o.max_sliding, 30u) << "saturating traffic should reach the burst";
  }
}

TEST(RateLimitBounds, FixedWindowIsExactPerAlignedWindow) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto o = Simulate(Algorithm::kFixedWindow, 30, 60'000 * kMs, seed);
    EXPECT_LE(o.max_aligned, 30u);
    EXPECT_LE(o.max_sliding, 2 * 30u);
  }
}

TEST(RateLimitBounds, SlidingWindowKeepsItsDocumentedBound) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto o = Simulate(Algorithm::kSlidingWindow, 30, 60'000 * kMs, seed);
    EXPECT_LE(o.max_aligned, 30u);
    EXPECT_LE(o.max_sliding, 2 * 30u);
  }
}

TEST(RateLimit, BoundariesOfEachAlgorithm) {
  for (Algorithm a :
       {Algorithm::kSlidingWindow, Algorithm::kTokenBucket, Algorithm::kFixedWindow}) {
    Rule rule{a, 100, 60'000 * kMs};
    State s;
    int64_t now = kBase;
    for (int i = 0; i < 99; ++i) s = Decide(rule, s, now, 1).next;  // limit - 1
    Result at = Decide(rule, s, now, 1);                            // limit
    ASSERT_TRUE(at.allowed);
    EXPECT_EQ(at.remaining, 0u);
    Result over = Decide(rule, at.next, now, 1);  // limit + 1
    EXPECT_FALSE(over.allowed);
    EXPECT_GT(over.retry_ns, 0);
    EXPECT_LE(over.retry_ns, 2 * rule.window_ns);
    // After the advertised wait, the unit passes.
    EXPECT_TRUE(Decide(rule, at.next, now + over.retry_ns, 1).allowed);
    // A denial does not change the state beyond window roll-over.
    EXPECT_EQ(over.next, Decide(rule, at.next, now, 1).next);
  }
}

}  // namespace
}  // namespace quotum::ratelimit
