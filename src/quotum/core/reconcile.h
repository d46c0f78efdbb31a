// Drift between a hot counter (what enforcement reads) and its aggregate in
// the cold store (what reports and the fallback read). Pure.
#pragma once

#include <cstdint>

namespace quotum {

/// The difference between a counter and its aggregate.
struct Drift {
  /// counter - aggregate: positive when the aggregate lags the counter.
  int64_t units = 0;
  /// |units| as a percentage of the larger of the two, rounded down to a
  /// hundredth (0 when both are 0, 100 when one of them is 0).
  double percent = 0;
  /// percent is above the flag threshold.
  bool flagged = false;
};

/// The drift of `aggregate` from `counter`, flagged when it is more than
/// `flag_percent` % (the seed's support threshold is 5).
Drift MeasureDrift(uint64_t counter, uint64_t aggregate, int flag_percent);

}  // namespace quotum
