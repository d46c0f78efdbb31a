// The Redis Lua limiter (src/quotum/store/redis/lua/) against the shared
// vectors of tests/golden/ratelimit.json and against the C++
// ratelimit::Decide, step by step, on a real redis-server.

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"
#include "quotum/ratelimit/limiter.h"
#include "quotum/ratelimit/rules.h"
#include "quotum/store/redis/lua_library.h"
#include "redis_fixture.h"

namespace quotum::contract {
namespace {

using ratelimit::Algorithm;
using ratelimit::AlgorithmName;
using ratelimit::Result;
using ratelimit::Rule;
using ratelimit::State;
using store::redis::RedisConnection;
using store::redis::RedisReply;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kDay = 86'400 * kSecond;
// The realistic epoch offset of tests/unit/ratelimit_test.cc.
constexpr int64_t kBase = 1'796'724'000LL * kSecond;

// The Lua encoding (limiter.lua) of a C++ state returned as `next` by Decide.
std::string EncodeState(const Rule& rule, const State& s) {
  switch (rule.algorithm) {
    case Algorithm::kFixedWindow:
      return absl::StrCat("F:", s.a / rule.window_ns, ":", s.c);
    case Algorithm::kTokenBucket:
      return absl::StrCat("G:", s.a / kSecond, ":", s.a % kSecond);
    case Algorithm::kSlidingWindow:
      break;
  }
  return absl::StrCat("S:", s.a / rule.window_ns, ":", s.b, ":", s.c);
}

struct LuaDecision {
  bool allowed = false;
  uint64_t remaining = 0;
  int64_t reset_ns = 0;
  int64_t retry_ns = 0;
  std::string next_state;
  int64_t ttl_ms = 0;
};

// Runs the limiter entries (LimiterLuaLibrary() + a test entry) by EVALSHA.
class LuaLimiter {
 public:
  explicit LuaLimiter(RedisConnection& conn)
      : conn_(conn),
        step_body_(Cat(store::redis::LimiterLuaLibrary(), LimiterStepLua())),
        pure_body_(Cat(store::redis::LimiterLuaLibrary(), LimiterPureLua())) {}

  // Loads both scripts; "" or the error.
  std::string Load() {
    auto step = conn_.LoadScript(step_body_);
    if (!step.ok()) return step.status().ToString();
    auto pure = conn_.LoadScript(pure_body_);
    if (!pure.ok()) return pure.status().ToString();
    step_sha_ = *step;
    pure_sha_ = *pure;
    return "";
  }

  // One step on the state stored at `key` (stored with PX ttl_ms * ttl_scale when allowed).
  LuaDecision Stored(const std::string& key, const Rule& rule, int64_t now, uint64_t cost,
                     int ttl_scale) {
    const std::string scale = std::to_string(ttl_scale);
    std::vector<std::string> args = Args(rule, now, cost);
    args.push_back(scale);
    return Run(step_sha_, step_body_, {key}, args);
  }

  // One pure call on `state` ("" = missing).
  LuaDecision Pure(const Rule& rule, const std::string& state, int64_t now, uint64_t cost) {
    std::vector<std::string> args = Args(rule, now, cost);
    args.push_back(state);
    return Run(pure_sha_, pure_body_, {}, args);
  }

 private:
  static std::vector<std::string> Args(const Rule& rule, int64_t now, uint64_t cost) {
    return {AlgorithmName(rule.algorithm),  std::to_string(rule.limit),
            std::to_string(rule.window_ns), std::to_string(now / kSecond),
            std::to_string(now % kSecond),  std::to_string(cost)};
  }

  LuaDecision Run(const std::string& sha, const std::string& body,
                  const std::vector<std::string>& keys, const std::vector<std::string>& args) {
    std::vector<std::string_view> key_views(keys.begin(), keys.end());
    std::vector<std::string_view> arg_views(args.begin(), args.end());
    auto reply = conn_.EvalSha(sha, body, key_views, arg_views);
    LuaDecision d;
    if (!reply.ok()) {
      ADD_FAILURE() << reply.status();
      return d;
    }
    return Parse(*reply);
  }

  static LuaDecision Parse(const RedisReply& reply) {
    LuaDecision d;
    if (reply->is_error() || reply->size() != 6) {
      ADD_FAILURE() << "unexpected reply: type " << reply->type() << " " << reply->str();
      return d;
    }
    const auto& r = *reply;
    d.allowed = r[0].integer() == 1;
    d.remaining = static_cast<uint64_t>(r[1].integer());
    d.reset_ns = r[2].integer();
    d.retry_ns = r[3].integer();
    d.next_state = std::string(r[4].str());
    d.ttl_ms = r[5].integer();
    return d;
  }

  RedisConnection& conn_;
  std::string step_body_, pure_body_;
  std::string step_sha_, pure_sha_;
};

boost::json::value LoadGolden() {
  std::ifstream in(QUOTUM_GOLDEN_DIR "/ratelimit.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return boost::json::parse(ss.str());
}

class RedisLimiterTest : public RedisSuite {
 protected:
  void SetUp() override {
    RedisSuite::SetUp();
    if (HasFatalFailure()) return;
    lua_.emplace(conn());
    const std::string error = lua_->Load();
    ASSERT_EQ(error, "");
  }

  // Every step of every "cases" vector at `base`; returns the steps checked.
  int RunCases(int64_t base);
  // Every "steady_polls" vector at `base`; returns the cases checked.
  int RunSteadyPolls(int64_t base);

  std::optional<LuaLimiter> lua_;
};

// Golden steps run through the stored entry: TTLs are scaled up so that a
// slow machine cannot expire a state the simulated clock still needs.
constexpr int kGoldenTtlScale = 1000;

int RedisLimiterTest::RunCases(int64_t base) {
  int checked = 0;
  const boost::json::value golden = LoadGolden();
  for (const auto& c : golden.at("cases").as_array()) {
    const std::string name(c.at("name").as_string());
    const Rule rule{ratelimit::AlgorithmFromName(c.at("algorithm").as_string()).value(),
                    c.at("limit").to_number<uint64_t>(),
                    c.at("window_ms").to_number<int64_t>() * kMs};
    const std::string key = absl::StrCat("golden:", base, ":", name);
    State state;  // the C++ side, for the next-state encoding
    int i = 0;
    for (const auto& step : c.at("steps").as_array()) {
      SCOPED_TRACE(absl::StrCat(name, " step ", i++, " base ", base));
      const int64_t now = base + step.at("t_ms").to_number<int64_t>() * kMs;
      const uint64_t cost = step.at("cost").to_number<uint64_t>();
      LuaDecision r = lua_->Stored(key, rule, now, cost, kGoldenTtlScale);
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
      const Result cpp = ratelimit::Decide(rule, state, now, cost);
      EXPECT_EQ(r.next_state, EncodeState(rule, cpp.next));
      if (cpp.allowed) state = cpp.next;
      ++checked;
    }
  }
  return checked;
}

int RedisLimiterTest::RunSteadyPolls(int64_t base) {
  int cases = 0;
  const boost::json::value golden = LoadGolden();
  for (const auto& c : golden.at("steady_polls").as_array()) {
    const Rule rule{ratelimit::AlgorithmFromName(c.at("algorithm").as_string()).value(),
                    c.at("limit").to_number<uint64_t>(),
                    c.at("window_ms").to_number<int64_t>() * kMs};
    const int64_t every = c.at("every_ms").to_number<int64_t>() * kMs;
    int64_t now = base + c.at("phase_ms").to_number<int64_t>() * kMs;
    const std::string key = absl::StrCat("steady:", base, ":", cases);
    const int polls = c.at("polls").to_number<int>();
    for (int i = 0; i < polls; ++i, now += every) {
      LuaDecision r = lua_->Stored(key, rule, now, 1, kGoldenTtlScale);
      if (!r.allowed) {
        ADD_FAILURE() << boost::json::serialize(c) << " at base " << base << ": poll " << i
                      << " refused, retry in " << r.retry_ns / kMs << " ms";
        break;
      }
    }
    ++cases;
  }
  return cases;
}

TEST_F(RedisLimiterTest, GoldenCasesAtEpochZero) { EXPECT_GE(RunCases(0), 19); }

TEST_F(RedisLimiterTest, GoldenCasesAtRealisticEpoch) { EXPECT_GE(RunCases(kBase), 19); }

TEST_F(RedisLimiterTest, SteadyPollersAreNeverRefusedAtEpochZero) {
  EXPECT_GE(RunSteadyPolls(0), 81);
}

TEST_F(RedisLimiterTest, SteadyPollersAreNeverRefusedAtRealisticEpoch) {
  EXPECT_GE(RunSteadyPolls(kBase), 81);
}

// Runs steps on both sides from an empty state and expects the same decision
// and next state each time. The Lua state lives like a key stored with
// PEXPIRE ttl_ms, but on the simulated clock: once it has expired the Lua side
// sees a missing state while the C++ side keeps its own, so a wrong TTL
// shows up as a mismatch.
class Comparer {
 public:
  Comparer(LuaLimiter& lua, Rule rule, int64_t start) : lua_(lua), rule_(rule), now_(start) {}

  void Step(int64_t delta, uint64_t cost) {
    now_ += delta;
    if (stored_ && now_ >= expires_at_) {
      stored_ = false;  // the key expired: the two sides' inputs now differ
      in_sync_ = false;
    }
    const std::string lua_in = stored_ ? lua_state_ : "";
    const Result cpp = ratelimit::Decide(rule_, cpp_state_, now_, cost);
    const LuaDecision lua = lua_.Pure(rule_, lua_in, now_, cost);
    // A denial's next state repeats the input, which differs after an expiry.
    const bool compare_next = cpp.allowed || in_sync_;
    const bool same = lua.allowed == cpp.allowed && lua.remaining == cpp.remaining &&
                      lua.reset_ns == cpp.reset_ns && lua.retry_ns == cpp.retry_ns &&
                      (!compare_next || lua.next_state == EncodeState(rule_, cpp.next));
    const bool ttl_sane = lua.ttl_ms >= 1 && (lua.ttl_ms - 1) * kMs <= 2 * rule_.window_ns;
    if ((!same || !ttl_sane) && ++failures_ <= 5) {
      ADD_FAILURE() << Describe(cost, lua_in, cpp, lua);
    }
    (cpp.allowed ? allowed_ : denied_)++;
    if (cpp.allowed) cpp_state_ = cpp.next;
    // A denial's next state (rolled over) may be stored too, with its own
    // TTL: every other denial does so, to check it is worth the input.
    const bool store_denial = !lua.allowed && in_sync_ && (denied_ % 2 == 0);
    if (lua.allowed || store_denial) {
      lua_state_ = lua.next_state;
      stored_ = true;
      in_sync_ = cpp.allowed || store_denial;
      expires_at_ = now_ + lua.ttl_ms * kMs;
    }
  }

  // Nanoseconds until the Lua state expires, or -1 when none is stored.
  int64_t UntilExpiry() const { return stored_ ? expires_at_ - now_ : -1; }

  int allowed() const { return allowed_; }
  int denied() const { return denied_; }

 private:
  std::string Describe(uint64_t cost, const std::string& lua_in, const Result& cpp,
                       const LuaDecision& lua) const {
    return absl::StrCat(AlgorithmName(rule_.algorithm), " limit ", rule_.limit, " window_ns ",
                        rule_.window_ns, " now ", now_, " cost ", cost, " lua state '", lua_in,
                        "'\n  C++: allowed ", cpp.allowed, " remaining ", cpp.remaining, " reset ",
                        cpp.reset_ns, " retry ", cpp.retry_ns, " next ",
                        EncodeState(rule_, cpp.next), "\n  Lua: allowed ", lua.allowed,
                        " remaining ", lua.remaining, " reset ", lua.reset_ns, " retry ",
                        lua.retry_ns, " next ", lua.next_state, " ttl_ms ", lua.ttl_ms);
  }

  LuaLimiter& lua_;
  Rule rule_;
  int64_t now_;
  State cpp_state_;
  std::string lua_state_;
  bool stored_ = false;
  bool in_sync_ = true;  // both sides hold the same state (Lua: encoded)
  int64_t expires_at_ = 0;
  int allowed_ = 0, denied_ = 0, failures_ = 0;
};

// A rule with a catalog-like or arbitrary window (1 ms .. 31 days, odd
// nanoseconds included) and a limit up to 10^9.
Rule RandomRule(Algorithm algorithm, std::mt19937_64& rng) {
  static constexpr int64_t kWindows[] = {kSecond, 5 * kSecond, 60 * kSecond, 3600 * kSecond,
                                         kDay,    30 * kDay,   31 * kDay};
  static constexpr uint64_t kLimits[] = {1, 2, 3, 10, 100, 1000, 1'000'000, 1'000'000'000};
  Rule rule{algorithm, 0, 0};
  rule.window_ns = rng() % 4 == 0 ? kMs + static_cast<int64_t>(rng() % (31 * kDay))
                                  : kWindows[rng() % std::size(kWindows)];
  rule.limit = rng() % 4 == 0 ? 1 + rng() % 1'000'000'000 : kLimits[rng() % std::size(kLimits)];
  return rule;
}

// Mostly small costs, sometimes 0, the whole limit, one above it, or any.
uint64_t RandomCost(const Rule& rule, std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0:
      return 0;
    case 1:
      return rule.limit;
    case 2:
      return rule.limit + 1;
    case 3:
      return 1 + rng() % rule.limit;
    default:
      return 1 + rng() % 3;
  }
}

// Gaps around the unit spacing W/limit, within a window, across two, or none.
int64_t RandomDelta(const Rule& rule, std::mt19937_64& rng) {
  const int64_t w = rule.window_ns;
  const uint64_t spacing = static_cast<uint64_t>(w) / rule.limit + 1;
  switch (rng() % 8) {
    case 0:
      return 0;
    case 1:
      return static_cast<int64_t>(rng() % 1000);
    case 2:
      return static_cast<int64_t>(rng() % (2 * spacing));
    case 3:
      return static_cast<int64_t>(rng() % static_cast<uint64_t>(w));
    case 4:
      return static_cast<int64_t>(rng() % static_cast<uint64_t>(2 * w));
    case 5:
      return 2 * w + static_cast<int64_t>(rng() % static_cast<uint64_t>(w));
    default:
      return static_cast<int64_t>(rng() % spacing);
  }
}

constexpr int kRandomSteps = 3000;
constexpr int kStepsPerRule = 150;

void CompareRandomSteps(LuaLimiter& lua, Algorithm algorithm, uint64_t seed) {
  std::mt19937_64 rng(seed);
  int allowed = 0, denied = 0;
  for (int done = 0; done < kRandomSteps; done += kStepsPerRule) {
    const Rule rule = RandomRule(algorithm, rng);
    const int64_t start = kBase + static_cast<int64_t>(rng() % (365 * kDay));
    Comparer cmp(lua, rule, start);
    for (int i = 0; i < kStepsPerRule; ++i) {
      // Now and then the last nanosecond before the stored state expires, or
      // the first after: a TTL too short by any amount shows up there.
      const int64_t until_expiry = cmp.UntilExpiry();
      const int64_t delta = until_expiry > 0 && rng() % 6 == 0
                                ? until_expiry - static_cast<int64_t>(rng() % 2)
                                : RandomDelta(rule, rng);
      cmp.Step(delta, RandomCost(rule, rng));
    }
    allowed += cmp.allowed();
    denied += cmp.denied();
  }
  // Both outcomes (and so the retry paths) were exercised.
  EXPECT_GT(allowed, kRandomSteps / 10);
  EXPECT_GT(denied, kRandomSteps / 10);
}

TEST_F(RedisLimiterTest, RandomSlidingWindowStepsMatchDecide) {
  CompareRandomSteps(*lua_, Algorithm::kSlidingWindow, 11);
}

TEST_F(RedisLimiterTest, RandomTokenBucketStepsMatchDecide) {
  CompareRandomSteps(*lua_, Algorithm::kTokenBucket, 12);
}

TEST_F(RedisLimiterTest, RandomFixedWindowStepsMatchDecide) {
  CompareRandomSteps(*lua_, Algorithm::kFixedWindow, 13);
}

// Long windows with huge limits and odd nanoseconds, where the products of
// the estimate and of the retry exceed 2^53 by far.
TEST_F(RedisLimiterTest, LongWindowsAndHugeLimitsMatchDecide) {
  const int64_t odd_start = kBase + 12'345 * kSecond + 987'654'321;
  for (Algorithm a :
       {Algorithm::kSlidingWindow, Algorithm::kTokenBucket, Algorithm::kFixedWindow}) {
    for (int64_t window : {kDay, 30 * kDay}) {
      for (uint64_t limit : {999'999'937ULL, 1'000'000'000ULL}) {
        SCOPED_TRACE(absl::StrCat(AlgorithmName(a), " window ", window, " limit ", limit));
        Comparer cmp(*lua_, Rule{a, limit, window}, odd_start);
        cmp.Step(0, limit - 1);               // nearly the whole limit at once
        cmp.Step(1, 2);                       // one over: denied, exact retry
        cmp.Step(window - 3, 1);              // just before the next bucket
        cmp.Step(window / 3 + 7, limit / 2);  // weighted previous bucket
        cmp.Step(window / 2 + 1, limit);      // the whole limit
        cmp.Step(999'999'999, limit / 3);
        cmp.Step(2 * window - 1, limit);
        cmp.Step(1, 1);
        cmp.Step(0, limit + 1);  // never
        EXPECT_GT(cmp.denied(), 0);
      }
    }
  }
}

// The stored entry writes the next state with PX ttl_ms when allowed, and
// nothing when denied; the key then expires by itself.
TEST_F(RedisLimiterTest, AllowedStepsStoreTheStateWithItsTtl) {
  const Rule rule{Algorithm::kTokenBucket, 10, 500 * kMs};  // one unit per 50 ms
  const int64_t now = kBase + 123'456'789;
  LuaDecision first = lua_->Stored("ttl:gcra", rule, now, 3, 1);
  ASSERT_TRUE(first.allowed);
  EXPECT_EQ(first.ttl_ms, 150);
  auto pttl = conn().Command({"PTTL", "ttl:gcra"});
  ASSERT_TRUE(pttl.ok()) << pttl.status();
  EXPECT_GT((*pttl)->integer(), 0);
  EXPECT_LE((*pttl)->integer(), 150);
  auto stored = conn().Command({"GET", "ttl:gcra"});
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ((*stored)->str(), first.next_state);
  EXPECT_EQ(first.next_state, absl::StrCat("G:", now / kSecond, ":", now % kSecond + 150 * kMs));

  LuaDecision denied = lua_->Stored("ttl:gcra", rule, now, 11, 1);
  ASSERT_FALSE(denied.allowed);
  EXPECT_EQ(denied.retry_ns, -1);
  auto after = conn().Command({"GET", "ttl:gcra"});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ((*after)->str(), first.next_state) << "a denial must not write";

  LuaDecision missing = lua_->Stored("ttl:never-allowed", rule, now, 11, 1);
  EXPECT_FALSE(missing.allowed);
  auto exists = conn().Command({"EXISTS", "ttl:never-allowed"});
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_EQ((*exists)->integer(), 0);

  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto gone = conn().Command({"EXISTS", "ttl:gcra"});
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ((*gone)->integer(), 0) << "the key should have expired after 150 ms";
}

// A state of another algorithm or a malformed one counts as missing; bad
// arguments are script errors.
TEST_F(RedisLimiterTest, ForeignStatesAreEmptyAndBadArgumentsAreErrors) {
  const Rule rule{Algorithm::kFixedWindow, 5, 60 * kSecond};
  const int64_t now = kBase + 7;
  const LuaDecision fresh = lua_->Pure(rule, "", now, 1);
  for (const char* foreign : {"S:29945400:3:4", "G:1796724000:5", "F:x:1", "F:29945400:1:2",
                              "F:-1:2", "F:29945400", "garbage"}) {
    SCOPED_TRACE(foreign);
    const LuaDecision d = lua_->Pure(rule, foreign, now, 1);
    EXPECT_EQ(d.remaining, fresh.remaining);
    EXPECT_EQ(d.next_state, fresh.next_state);
  }
  const std::string body = Cat(store::redis::LimiterLuaLibrary(), LimiterPureLua());
  auto sha = conn().LoadScript(body);
  ASSERT_TRUE(sha.ok()) << sha.status();
  const std::vector<std::vector<std::string_view>> bad = {
      {"leaky_bucket", "5", "1000", "1", "0", "1", ""},
      {"fixed_window", "0", "1000", "1", "0", "1", ""},
      {"fixed_window", "5", "4503599627370496", "1", "0", "1", ""},
      {"fixed_window", "5", "1000", "1", "1000000000", "1", ""},
      {"fixed_window", "5", "1000", "1.5", "0", "1", ""},
      {"fixed_window", "5", "1000", "1", "0", "-1", ""},
      // A 1 ns window at a real epoch: the window index exceeds 2^53.
      {"fixed_window", "5", "1", "1796724000", "0", "1", ""},
      // A stored TAT 9007198 s (~104 days) ahead: the difference reaches 2^53 ns.
      {"token_bucket", "5", "1000000000", "1796724000", "0", "1", "G:1805731198:0"},
  };
  for (const auto& args : bad) {
    auto reply = conn().EvalSha(*sha, body, {}, args);
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_TRUE((*reply)->is_error()) << args[0] << " " << args[1] << " " << args[2];
  }
  // One second less ahead is inside the contract: denied as in C++.
  const Rule gcra{Algorithm::kTokenBucket, 5, kSecond};
  const int64_t at = 1'796'724'000 * kSecond;
  const LuaDecision ahead = lua_->Pure(gcra, "G:1805731197:0", at, 1);
  const Result cpp = ratelimit::Decide(gcra, State{.a = 1'805'731'197 * kSecond}, at, 1);
  EXPECT_FALSE(ahead.allowed);
  EXPECT_FALSE(cpp.allowed);
  EXPECT_EQ(ahead.retry_ns, cpp.retry_ns);
  EXPECT_EQ(ahead.retry_ns, 9'007'197 * kSecond - kSecond + 200 * kMs);
  EXPECT_EQ(ahead.remaining, cpp.remaining);
  EXPECT_EQ(ahead.reset_ns, cpp.reset_ns);
  EXPECT_EQ(ahead.next_state, "G:1805731197:0");
}

}  // namespace
}  // namespace quotum::contract
