#include "quotum/core/quota.h"

#include <cmath>
#include <limits>

namespace quotum {

QuotaOutcome DecideQuota(const QuotaRequest& r) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  QuotaOutcome out;
  if (r.used > kMaxCounter || r.quantity > kMaxCounter - r.used) {
    out.verdict = QuotaOutcome::Verdict::kOverflow;
    return out;
  }
  if (!r.limit) {
    out.admitted = r.quantity;
    out.remaining = kMax;
    return out;
  }
  const uint64_t limit = *r.limit;
  const uint64_t left = r.used >= limit ? 0 : limit - r.used;
  if (r.quantity <= left) {
    out.admitted = r.quantity;
    out.remaining = left - r.quantity;
    return out;
  }
  if (r.on_limit == OnLimit::kAllow) {
    out.admitted = r.quantity;
    out.overage = r.quantity - left;
    out.remaining = 0;
    return out;
  }
  if (r.partial && left > 0) {
    out.admitted = left;
    out.remaining = 0;
    return out;
  }
  out.verdict = QuotaOutcome::Verdict::kDenied;
  out.remaining = left;
  return out;
}

double UsagePercentage(uint64_t used, std::optional<uint64_t> limit) {
  if (!limit) return 0.0;
  if (*limit == 0) return used == 0 ? 0.0 : 100.0;
  double pct = static_cast<double>(used) * 100.0 / static_cast<double>(*limit);
  return std::round(pct * 10.0) / 10.0;
}

}  // namespace quotum
