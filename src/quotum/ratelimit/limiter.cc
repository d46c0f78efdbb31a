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

// Estimated units in the sliding window: ceil(prev * (W - elapsed) / W) + curr.
uint64_t Estimate(const Rule& r, const State& s, int64_t now) {
  const int64_t elapsed = now - s.a;
  const i128 weighted = static_cast<i128>(s.b) * (r.window_ns - elapsed);
  return static_cast<uint64_t>(CeilDiv(weighted, r.window_ns)) + s.c;
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
    // ceil(b*(W-e)/W) <= room - c  <=>  b*(W-e) <= (room-c)*W  <=>  e >= W - (room-c)*W/b
    const i128 allowed_weight = static_cast<i128>(room_now - s.c) * W;
    const int64_t e = W - static_cast<int64_t>(allowed_weight / s.b);
    out.retry_ns = std::max<int64_t>(1, e - (now - start));
  } else {
    // Next bucket: b' = c, c' = 0; need ceil(c*(W-e)/W) <= room.
    const i128 allowed_weight = static_cast<i128>(room_now) * W;
    const int64_t e = W - static_cast<int64_t>(allowed_weight / s.c);
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
