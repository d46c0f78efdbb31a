#pragma once

#include <cstdint>
#include <optional>

#include "quotum/core/catalog.h"

namespace quotum {

/// Input of one period-quota decision for one meter.
struct QuotaRequest {
  uint64_t used = 0;              ///< units already counted this period
  std::optional<uint64_t> limit;  ///< effective limit; nullopt = unlimited
  uint64_t quantity = 0;          ///< units asked for (>= 1)
  bool partial = false;           ///< admit what fits instead of all-or-nothing
  OnLimit on_limit = OnLimit::kReject;
};

/// Outcome of a period-quota decision.
struct QuotaOutcome {
  enum class Verdict { kAdmitted, kDenied, kOverflow };
  Verdict verdict = Verdict::kAdmitted;
  uint64_t admitted = 0;  ///< units to charge (0 when denied)
  uint64_t overage = 0;   ///< admitted units beyond the limit (soft limits only)
  /// Units left under the limit after charging (UINT64_MAX when unlimited).
  uint64_t remaining = 0;
};

/// Pure per-unit quota maths. Never admits more than the limit unless the
/// policy is kAllow; kOverflow when used + quantity does not fit in 64 bits.
QuotaOutcome DecideQuota(const QuotaRequest& r);

/// used / limit as a percentage rounded to one decimal (0 when unlimited).
double UsagePercentage(uint64_t used, std::optional<uint64_t> limit);

}  // namespace quotum
