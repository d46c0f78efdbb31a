#pragma once

#include <cstdint>

namespace quotum::ratelimit {

/// Rate-limit algorithms. Time is integer nanoseconds since the Unix epoch so
/// the same maths runs bit-for-bit in C++ and (later) in Redis Lua scripts;
/// tests/golden/ratelimit.json holds the shared vectors.
enum class Algorithm {
  /// Two fixed buckets, the previous one weighted by how much of it still
  /// overlaps the sliding window (the estimate is rounded down, so a client
  /// spaced W/limit apart or more is never refused). Worst case: in an
  /// arbitrary window of length W it can admit up to 2*limit units when the
  /// previous bucket's units all sit at its very end; with evenly spread
  /// traffic it admits at most `limit`. Never admits more than `limit` within
  /// one aligned bucket.
  kSlidingWindow,
  /// GCRA (token bucket without a timer): bursts up to `limit`, then one unit
  /// per window/limit. Smooth, but in an arbitrary window of length W it can
  /// admit the burst plus the refill: at most 2*limit units.
  kTokenBucket,
  /// Counter per aligned window [kW, (k+1)W). Up to 2*limit across a boundary.
  kFixedWindow,
};

struct Rule {
  Algorithm algorithm = Algorithm::kSlidingWindow;
  uint64_t limit = 0;     ///< units per window (>= 1)
  int64_t window_ns = 0;  ///< window length (>= 1 ns)
};

/// Per-key limiter state. Meaning by algorithm:
/// sliding: a = current bucket start, b = previous bucket count, c = current count;
/// token bucket: a = theoretical arrival time (TAT);
/// fixed: a = window start, c = count.
struct State {
  int64_t a = 0;
  uint64_t b = 0;
  uint64_t c = 0;
  friend bool operator==(const State&, const State&) = default;
};

struct Result {
  bool allowed = false;
  uint64_t remaining = 0;  ///< units still admissible after this decision
  int64_t reset_ns = 0;    ///< until the limiter is fully replenished / the window resets
  int64_t retry_ns = 0;    ///< when denied: until this cost could be admitted (-1: never)
  State next;              ///< state to store if the decision is applied
};

/// Decides whether `cost` units may pass at `now_ns`. Pure: the caller stores
/// `next` only when it applies the decision (all rules of a request together).
/// A denied decision's `next` equals the input state apart from window roll-over.
Result Decide(const Rule& rule, const State& state, int64_t now_ns, uint64_t cost);

}  // namespace quotum::ratelimit
