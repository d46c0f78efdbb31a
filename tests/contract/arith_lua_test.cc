// arith.lua's helpers, run in a real redis-server, against __int128 maths on
// random inputs near 2^53 (tests/contract/lua/arith_probe.lua runs them).

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"
#include "quotum/store/redis/lua_library.h"
#include "redis_fixture.h"

namespace quotum::contract {
namespace {

using i128 = __int128;

constexpr int64_t kTwo52 = int64_t{1} << 52;
constexpr int64_t kTwo53 = int64_t{1} << 53;
constexpr int64_t kNs = 1'000'000'000;

// One probe call: the operands, and the expected reply ("error" when the
// helper must raise).
struct Call {
  std::vector<int64_t> operands;
  std::string expected;
};

// The expected reply of a helper returning integers below 2^53, or "error".
std::string Expect(std::initializer_list<i128> results) {
  std::string out;
  for (i128 r : results) {
    if (r < -kTwo53 || r >= kTwo53) return "error";
    absl::StrAppend(&out, out.empty() ? "" : " ", static_cast<int64_t>(r));
  }
  return out;
}

class ArithLuaTest : public RedisSuite {
 protected:
  void SetUp() override {
    RedisSuite::SetUp();
    if (HasFatalFailure()) return;
    body_ = Cat(store::redis::LimiterLuaLibrary(), ArithProbeLua());
    auto sha = conn().LoadScript(body_);
    ASSERT_TRUE(sha.ok()) << sha.status();
    sha_ = *sha;
  }

  // Runs `calls` of `helper` in batches; expects each reply; returns how many ran.
  int Check(const std::string& helper, const std::vector<Call>& calls) {
    constexpr size_t kBatch = 500;
    int failures = 0;
    for (size_t from = 0; from < calls.size(); from += kBatch) {
      const size_t to = std::min(calls.size(), from + kBatch);
      std::vector<std::string> args = {helper};
      for (size_t i = from; i < to; ++i) {
        for (int64_t v : calls[i].operands) args.push_back(std::to_string(v));
      }
      std::vector<std::string_view> views(args.begin(), args.end());
      auto reply = conn().EvalSha(sha_, body_, {}, views);
      if (!reply.ok() || (*reply)->is_error() || (*reply)->size() != to - from) {
        ADD_FAILURE() << helper << ": bad reply " << (reply.ok() ? (*reply)->str() : "")
                      << (reply.ok() ? "" : reply.status().ToString());
        return 0;
      }
      for (size_t i = from; i < to; ++i) {
        const std::string got((**reply)[i - from].str());
        if (got != calls[i].expected && ++failures <= 5) {
          std::string ops;
          for (int64_t v : calls[i].operands) absl::StrAppend(&ops, " ", v);
          ADD_FAILURE() << helper << ops << ": got '" << got << "', expected '" << calls[i].expected
                        << "'";
        }
      }
    }
    return static_cast<int>(calls.size());
  }

  std::string body_, sha_;
  std::mt19937_64 rng_{20260501};

  // Uniform in [lo, hi].
  int64_t Uniform(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng_() % static_cast<uint64_t>(hi - lo + 1));
  }
  // A value with a random bit length up to `bits`, often right at the top.
  int64_t AnyBelowBits(int bits) {
    if (rng_() % 4 == 0) return (int64_t{1} << bits) - 1 - Uniform(0, 1 << 20);
    const int len = 1 + static_cast<int>(rng_() % bits);
    return static_cast<int64_t>(rng_() % (uint64_t{1} << len));
  }
};

// a * b + d = q * c + r for operands near 2^53 and divisors up to 2^52; b is
// chosen so that q fits below 2^53 most of the time, and just over otherwise.
TEST_F(ArithLuaTest, MulAddDivModMatchesInt128) {
  std::vector<Call> calls;
  for (int i = 0; i < 4000; ++i) {
    const int64_t a = std::max<int64_t>(1, AnyBelowBits(53));
    const int64_t c = std::max<int64_t>(1, std::min(kTwo52, AnyBelowBits(53)));
    const int64_t d = AnyBelowBits(53);
    // The largest b with q < 2^53: (a * b + d) / c <= 2^53 - 1.
    const i128 b_max = (static_cast<i128>(kTwo53 - 1) * c + (c - 1) - d) / a;
    const i128 b_top = std::min<i128>(b_max, kTwo53 - 1);
    int64_t b = static_cast<int64_t>(b_top) - (i % 3 == 0 ? 0 : Uniform(0, 1 << 20));
    if (i % 5 == 0 && b_max < kTwo53 - 1) b = static_cast<int64_t>(b_max) + 1;  // overflow
    b = std::max<int64_t>(0, b);
    const i128 p = static_cast<i128>(a) * b + d;
    calls.push_back({{a, b, d, c}, Expect({p / c, p % c})});
  }
  EXPECT_EQ(Check("muladd_divmod", calls), 4000);
}

TEST_F(ArithLuaTest, FloorAndCeilOfProductsMatchInt128) {
  std::vector<Call> floors, ceils;
  for (int i = 0; i < 2000; ++i) {
    const int64_t a = AnyBelowBits(53), c = std::max<int64_t>(1, AnyBelowBits(52));
    // The largest b with a * b / c <= 2^53 - 2, so that even the ceiling fits.
    const i128 b_top =
        std::min<i128>(kTwo53 - 1, static_cast<i128>(kTwo53 - 2) * c / std::max<int64_t>(a, 1));
    const int64_t b =
        static_cast<int64_t>(std::max<i128>(0, b_top - (i % 2 ? 0 : Uniform(0, 1000))));
    const i128 p = static_cast<i128>(a) * b;
    floors.push_back({{a, b, c}, Expect({p / c})});
    ceils.push_back({{a, b, c}, Expect({(p + c - 1) / c})});
  }
  EXPECT_EQ(Check("muldiv_floor", floors), 2000);
  EXPECT_EQ(Check("muldiv_ceil", ceils), 2000);
}

// Quotients below 2^50 (ar_muladd_divmod's rounded estimate, corrected by an
// exact remainder), including products that are exact multiples of c, one
// below and c - 1 above: there the estimate is most often off by one.
TEST_F(ArithLuaTest, SmallQuotientsOfWideProductsMatchInt128) {
  std::vector<Call> calls;
  for (int i = 0; i < 4000; ++i) {
    const int64_t a = std::max<int64_t>(1, AnyBelowBits(53));
    const int64_t c = std::max<int64_t>(1, std::min(kTwo52, AnyBelowBits(53)));
    const i128 target = static_cast<i128>(AnyBelowBits(50)) * c;
    const int64_t b = static_cast<int64_t>(std::min<i128>(kTwo53 - 1, target / a));
    const i128 rest = target - static_cast<i128>(a) * b;  // >= 0, < a unless b was capped
    i128 d = AnyBelowBits(53);
    switch (i % 4) {
      case 0:
        d = rest;
        break;
      case 1:
        d = rest - 1;
        break;
      case 2:
        d = rest + c - 1;
        break;
    }
    if (d < 0 || d >= kTwo53) d = AnyBelowBits(53);
    const i128 p = static_cast<i128>(a) * b + d;
    calls.push_back({{a, b, static_cast<int64_t>(d), c}, Expect({p / c, p % c})});
  }
  EXPECT_EQ(Check("muladd_divmod", calls), 4000);
}

// Absolute times (s, n) around today and centuries ahead, against windows
// from 1 us to 2^52 ns.
TEST_F(ArithLuaTest, TimeDivModMatchesInt128) {
  std::vector<Call> calls;
  for (int i = 0; i < 4000; ++i) {
    const int64_t s = i % 2 ? Uniform(1'796'724'000, 1'796'724'000 + 400LL * 86400 * 365)
                            : Uniform(0, 9'000'000'000);
    const int64_t n = i % 3 ? Uniform(0, kNs - 1) : kNs - 1;
    const int64_t w = i % 4 ? Uniform(1000, kTwo52) : std::min(kTwo52, AnyBelowBits(53) + 1);
    const i128 t = static_cast<i128>(s) * kNs + n;
    calls.push_back({{s, n, w}, Expect({t / w, t % w})});
  }
  EXPECT_EQ(Check("time_divmod", calls), 4000);
}

// The expected muladd_divmod reply for in-contract operands.
std::string DivMod(int64_t a, int64_t b, int64_t d, int64_t c) {
  const i128 p = static_cast<i128>(a) * b + d;
  return Expect({p / c, p % c});
}

// Operands outside the contract raise instead of rounding; the edges inside it work.
TEST_F(ArithLuaTest, OutOfContractOperandsRaise) {
  const std::vector<Call> calls = {
      {{1, 1, 0, kTwo52 + 1}, "error"},                      // divisor above 2^52
      {{1, 1, 0, 0}, "error"},                               // divisor 0
      {{kTwo53, 1, 0, 1}, "error"},                          // operand of 2^53
      {{-1, 1, 0, 1}, "error"},                              // negative operand
      {{kTwo53 - 1, 2, 0, 1}, "error"},                      // quotient 2^54 - 2
      {{kTwo53 - 1, kTwo52, kTwo53 - 1, kTwo52}, "error"},   // quotient exactly 2^53
      {{kTwo53 - 1, 2, 0, 2}, DivMod(kTwo53 - 1, 2, 0, 2)},  // quotient 2^53 - 1
      {{kTwo53 - 1, kTwo53 - 1, kTwo53 - 1, kTwo52}, "error"},
      {{kTwo53 - 1, kTwo52 - 1, kTwo53 - 1, kTwo52},
       DivMod(kTwo53 - 1, kTwo52 - 1, kTwo53 - 1, kTwo52)},
  };
  EXPECT_EQ(Check("muladd_divmod", calls), 9);
}

}  // namespace
}  // namespace quotum::contract
