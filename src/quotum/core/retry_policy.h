#pragma once

#include <cstdint>

#include "absl/time/time.h"

namespace quotum {

/// How long to wait before the next delivery attempt, after
/// `attempts_so_far` failed ones (below 1 counts as 1).
///
/// Exponential backoff with "equal jitter": the ceiling is
/// base * 2^(attempts_so_far - 1), at most `cap` (and never negative); the
/// delay is half the ceiling plus a share of the other half chosen by
/// `random`, proportionally: random 0 gives ceiling / 2, random UINT64_MAX
/// gives (nearly) the ceiling. So the delay always lies in
/// [ceiling / 2, ceiling], keeps growing with the attempts, and receivers
/// that failed together do not retry in lockstep when `random` is drawn
/// uniformly per attempt. Pure and deterministic given its arguments
/// (nanosecond resolution).
absl::Duration RetryDelay(int attempts_so_far, absl::Duration base, absl::Duration cap,
                          uint64_t random);

}  // namespace quotum
