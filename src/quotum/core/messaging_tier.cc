#include "quotum/core/messaging_tier.h"

namespace quotum {

std::optional<uint64_t> TierLimitAt(const TierPolicy& policy, uint32_t level) {
  if (level >= policy.steps.size()) return std::nullopt;
  return policy.steps[level];
}

uint64_t StepUpThreshold(uint64_t limit) { return limit / 2 + limit % 2; }

bool MarkQualified(const TierPolicy& policy, uint64_t unique_7d, int64_t now_ms, TierLevel& t) {
  const std::optional<uint64_t> limit = TierLimitAt(policy, t.level);
  if (t.qualified_ms != 0 || !limit || unique_7d < StepUpThreshold(*limit)) return false;
  t.qualified_ms = now_ms;
  return true;
}

bool AdvanceTier(const TierPolicy& policy, uint64_t unique_7d, int64_t now_ms, TierLevel& t) {
  const int64_t delay = absl::ToInt64Milliseconds(policy.step_up_delay);
  bool changed = false;
  while (t.qualified_ms != 0 && now_ms >= t.qualified_ms + delay && t.level < policy.steps.size()) {
    t.level += 1;
    t.since_ms = t.qualified_ms + delay;
    t.qualified_ms = 0;
    MarkQualified(policy, unique_7d, t.since_ms, t);
    changed = true;
  }
  return changed;
}

TierView ViewTier(const TierPolicy& policy, TierLevel t, uint64_t used_24h, uint64_t unique_7d,
                  int64_t now_ms) {
  AdvanceTier(policy, unique_7d, now_ms, t);
  TierView v;
  v.level = t.level;
  v.limit = TierLimitAt(policy, t.level);
  v.used_24h = used_24h;
  v.unique_7d = unique_7d;
  if (!v.limit) return v;
  v.has_next = true;
  v.next_limit = TierLimitAt(policy, t.level + 1);
  const uint64_t threshold = StepUpThreshold(*v.limit);
  v.needed = unique_7d >= threshold || t.qualified_ms != 0 ? 0 : threshold - unique_7d;
  if (t.qualified_ms != 0) {
    v.next_at_ms = t.qualified_ms + absl::ToInt64Milliseconds(policy.step_up_delay);
  }
  return v;
}

}  // namespace quotum
