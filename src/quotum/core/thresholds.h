// Alert thresholds of a counter meter: which ones a charge crosses, and
// whether a fired one still holds. Pure.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace quotum {

/// The thresholds (percentages of `limit`, in the order given) that moving a
/// counter from `before` to `after` crosses: t is crossed when
/// before < t% of limit <= after. A charge over several thresholds crosses
/// each. Nothing is crossed without a limit (0 counts as none here: a zero
/// limit has no meaningful percentage) or when after <= before. Exact in
/// integers for counters up to 2^53 and thresholds up to 1000.
std::vector<int> CrossedThresholds(uint64_t before, uint64_t after, uint64_t limit,
                                   std::span<const int> thresholds);

/// True while `used` is at least `threshold`% of `limit`.
bool ThresholdHolds(uint64_t used, uint64_t limit, int threshold);

}  // namespace quotum
