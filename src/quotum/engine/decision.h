#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"

namespace quotum::engine {

/// Which rule refused a request.
enum class DenyReason : uint8_t {
  kNone = 0,
  kQuotaExceeded = 1,  ///< billing-period limit of a counter meter
};

/// The result of one check or consume: the same value is returned on an
/// idempotent replay.
struct Decision {
  bool allowed = false;
  uint64_t requested = 0;
  /// Units charged (0 for a check or a denial).
  uint64_t consumed = 0;
  /// Units left under the limit after this decision (UINT64_MAX if unlimited).
  uint64_t remaining = 0;
  /// Effective limit; nullopt = unlimited.
  std::optional<uint64_t> limit;
  /// Units admitted beyond the limit under an `allow` (soft) policy.
  uint64_t overage = 0;
  /// The billing period the decision applies to: [period_start, reset_at).
  absl::Time period_start;
  /// When the limit resets: the billing period's end.
  absl::Time reset_at;
  std::string meter;
  DenyReason reason = DenyReason::kNone;
  /// True when this decision was answered from the idempotency store.
  bool replayed = false;
};

}  // namespace quotum::engine
