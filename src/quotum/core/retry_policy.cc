#include "quotum/core/retry_policy.h"

#include <algorithm>

#include "absl/numeric/int128.h"

namespace quotum {
namespace {

/// min(base * 2^(attempts - 1), cap) in nanoseconds, without overflow.
int64_t CeilingNanos(int attempts, absl::Duration base, absl::Duration cap) {
  const int64_t cap_ns = std::max<int64_t>(0, absl::ToInt64Nanoseconds(cap));
  int64_t ns = std::clamp<int64_t>(absl::ToInt64Nanoseconds(base), 0, cap_ns);
  for (int i = 1; i < attempts && ns < cap_ns; ++i) {
    ns = ns > cap_ns / 2 ? cap_ns : ns * 2;
    if (ns == 0) break;
  }
  return ns;
}

}  // namespace

absl::Duration RetryDelay(int attempts_so_far, absl::Duration base, absl::Duration cap,
                          uint64_t random) {
  const int64_t ceiling = CeilingNanos(std::max(attempts_so_far, 1), base, cap);
  const int64_t fixed = ceiling / 2;
  const uint64_t span = static_cast<uint64_t>(ceiling - fixed);
  // span * random / 2^64: a proportional share of the random half, in [0, span).
  const uint64_t share = absl::Uint128High64(absl::uint128(span) * random);
  return absl::Nanoseconds(fixed + static_cast<int64_t>(share));
}

}  // namespace quotum
