#include "quotum/core/reconcile.h"

#include <algorithm>

#include "absl/numeric/int128.h"

namespace quotum {

Drift MeasureDrift(uint64_t counter, uint64_t aggregate, int flag_percent) {
  Drift d;
  const uint64_t larger = std::max(counter, aggregate);
  const uint64_t gap = counter > aggregate ? counter - aggregate : aggregate - counter;
  d.units = counter >= aggregate ? static_cast<int64_t>(gap) : -static_cast<int64_t>(gap);
  if (larger == 0) return d;
  // Hundredths of a percent, exact in 128 bits.
  const absl::uint128 hundredths = absl::uint128(gap) * 10'000 / larger;
  d.percent = static_cast<double>(absl::Uint128Low64(hundredths)) / 100.0;
  // gap / larger > flag / 100, exactly.
  d.flagged =
      absl::uint128(gap) * 100 > absl::uint128(larger) * static_cast<uint64_t>(flag_percent);
  return d;
}

}  // namespace quotum
