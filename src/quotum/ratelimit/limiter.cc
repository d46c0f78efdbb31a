#include "quotum/ratelimit/limiter.h"

#include <algorithm>

namespace quotum::ratelimit {
namespace {

using i128 = __int128;

int64_t FloorAlign(int64_t t, int64_t w) {
  int64_t r = t % w;
  if (r < 0) r += w;
  return t - r;
}

int64_t CeilDiv(i128 num, i128 den) { return static_cast<int64_t>((num + den - 1) / den); }

Result Fixed(const Rule& r, State s, int64_t now, uint64_t cost) {
  const int64_t start = FloorAlign(now, r.window_ns);
  if (s.a != start) {
    s.a = start;
    s.c = 0;
  }
  Result out;
  out.reset_ns = start + r.window_ns - now;
  const bool fits = cost <= r.limit && s.c <= r.limit - cost;
  if (fits) {
    s.c += cost;
    out.allowed = true;
    out.retry_ns = 0;
  } else {
    out.retry_ns = cost > r.limit ? -1 : out.reset_ns;
  }
  out.remaining = s.c >= r.limit ? 0 : r.limit - s.c;
  out.next = s;
  return out;
}

// Estimated units in the sliding window: floor(prev * (W - elapsed) / W) + curr.
// Rounded down: a client spaced at least W/limit apart sees at most limit - 1
// units before it, so it is never refused (rounding up refused a limit-1 rule
// polled every 1.1 W).
uint64_t Estimate(const Rule& r, const State& s, int64_t now) {
  const int64_t elapsed = now - s.a;
  const i128 weighted = static_cast<i128>(s.b) * (r.window_ns - elapsed);
  return static_cast<uint64_t>(weighted / r.window_ns) + s.c;
}

// Smallest elapsed e in a bucket with `prev` units at which
// floor(prev * (W - e) / W) <= room, i.e. prev * (W - e) < (room + 1) * W.
int64_t ElapsedWhenWeightFits(uint64_t prev, uint64_t room, int64_t W) {
  return W + 1 - CeilDiv(static_cast<i128>(room + 1) * W, prev);
}

Result Sliding(const Rule& r, State s, int64_t now, uint64_t cost) {
  const int64_t W = r.window_ns;
  const int64_t start = FloorAlign(now, W);
  if (s.a != start) {
    s.b = (s.a == start - W) ? s.c : 0;
    s.c = 0;
    s.a = start;
  }
  Result out;
  const uint64_t est = Estimate(r, s, now);
  out.reset_ns = (s.c > 0 ? 2 * W : W) - (now - start);
  if (cost <= r.limit && est <= r.limit - cost) {
    s.c += cost;
    out.allowed = true;
    out.remaining = r.limit - est - cost;
    out.next = s;
    return out;
  }
  out.remaining = est >= r.limit ? 0 : r.limit - est;
  out.next = s;
  if (cost > r.limit) {
    out.retry_ns = -1;
    return out;
  }
  // Smallest elapsed e (in this bucket or the next) at which the estimate fits.
  const uint64_t room_now = r.limit - cost;  // estimate must drop to this
  if (s.c <= room_now) {
    // Denied with c <= room means b > 0: wait for the weighted previous bucket.
    const int64_t e = ElapsedWhenWeightFits(s.b, room_now - s.c, W);
    out.retry_ns = std::max<int64_t>(1, e - (now - start));
  } else {
    // Next bucket: b' = c, c' = 0; need floor(c*(W-e)/W) <= room.
    const int64_t e = ElapsedWhenWeightFits(s.c, room_now, W);
    out.retry_ns = (W - (now - start)) + std::max<int64_t>(0, e);
  }
  return out;
}

Result Gcra(const Rule& r, State s, int64_t now, uint64_t cost) {
  const int64_t W = r.window_ns;
  const int64_t interval = CeilDiv(static_cast<i128>(W), r.limit);  // per unit
  const int64_t tat = std::max(s.a, now);
  Result out;
  if (cost > r.limit) {
    out.retry_ns = -1;
    out.reset_ns = tat - now;
    out.remaining = static_cast<uint64_t>(std::max<int64_t>(0, (W - (tat - now)) / interval));
    out.next = s;
    return out;
  }
  const int64_t new_tat = tat + interval * static_cast<int64_t>(cost);
  if (new_tat - now <= W) {
    s.a = new_tat;
    out.allowed = true;
    out.reset_ns = new_tat - now;
    out.remaining = static_cast<uint64_t>((W - (new_tat - now)) / interval);
    out.next = s;
    return out;
  }
  out.retry_ns = new_tat - now - W;
  out.reset_ns = tat - now;
  out.remaining = static_cast<uint64_t>(std::max<int64_t>(0, (W - (tat - now)) / interval));
  out.next = s;
  return out;
}

}  // namespace

Result Decide(const Rule& rule, const State& state, int64_t now_ns, uint64_t cost) {
  switch (rule.algorithm) {
    case Algorithm::kFixedWindow:
      return Fixed(rule, state, now_ns, cost);
    case Algorithm::kTokenBucket:
      return Gcra(rule, state, now_ns, cost);
    case Algorithm::kSlidingWindow:
      break;
  }
  return Sliding(rule, state, now_ns, cost);
}

}  // namespace quotum::ratelimit
