#pragma once

// The admin's view of which tenants are closest to their limits (GET
// /admin/risk). A tenant's risk is the highest percentage, over its limited
// counter meters, of what it used and of what its forecast projects for the
// period's end.

#include <cstddef>
#include <optional>
#include <vector>

#include "quotum/core/catalog.h"
#include "quotum/core/forecast.h"

namespace quotum::engine {

/// The highest percentage of one tenant and the meter that gives it.
struct RiskScore {
  double percent = 0;
  MeterId meter = 0;
  /// The percentage comes from the meter's forecast, not from what it used.
  bool projected = false;
};

/// Scores a tenant from its counters and limits (per MeterId) and, when
/// known, its forecasts (empty: the current percentages alone). Unlimited
/// meters and gauges do not count; with none limited, the score is 0 on the
/// catalog's first counter meter.
RiskScore ScoreRisk(const Catalog& cat, const std::vector<uint64_t>& used,
                    const std::vector<std::optional<uint64_t>>& limits,
                    const std::vector<std::optional<Forecast>>& forecasts);

/// How many tenants, per one shown, get the costlier second look (their
/// forecast read from the cold store) after a first ranking by usage.
inline constexpr size_t kRiskCandidatesPerShown = 4;

}  // namespace quotum::engine
