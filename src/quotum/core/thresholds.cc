#include "quotum/core/thresholds.h"

namespace quotum {
namespace {

// used x 100 >= threshold x limit, without floating point (2^53 x 100 and
// 1000 x 2^53 both fit in 64 bits).
bool Reaches(uint64_t used, uint64_t limit, int threshold) {
  return used * 100 >= static_cast<uint64_t>(threshold) * limit;
}

}  // namespace

std::vector<int> CrossedThresholds(uint64_t before, uint64_t after, uint64_t limit,
                                   std::span<const int> thresholds) {
  std::vector<int> crossed;
  if (limit == 0 || after <= before) return crossed;
  for (int t : thresholds) {
    if (t > 0 && !Reaches(before, limit, t) && Reaches(after, limit, t)) crossed.push_back(t);
  }
  return crossed;
}

bool ThresholdHolds(uint64_t used, uint64_t limit, int threshold) {
  return limit > 0 && Reaches(used, limit, threshold);
}

}  // namespace quotum
