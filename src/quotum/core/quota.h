#pragma once

#include <cstdint>
#include <optional>

#include "quotum/core/catalog.h"

namespace quotum {

/// The largest value a counter holds, 2^53 - 1: the largest integer every
/// ledger represents exactly (SQLite and Redis keep 64-bit integers, but the
/// Redis ledger's Lua script computes in IEEE doubles). A charge that would
/// pass it is refused (kOverflow).
inline constexpr uint64_t kMaxCounter = 9007199254740991ULL;

/// Adds one, staying at kMaxCounter instead of wrapping (for counts the
/// server makes itself, which nobody can be refused).
inline void SaturatingIncrement(uint64_t& counter) {
  if (counter < kMaxCounter) ++counter;
}

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
/// policy is kAllow; kOverflow when used + quantity would pass kMaxCounter.
QuotaOutcome DecideQuota(const QuotaRequest& r);

/// used / limit as a percentage rounded to one decimal (0 when unlimited).
double UsagePercentage(uint64_t used, std::optional<uint64_t> limit);

}  // namespace quotum
