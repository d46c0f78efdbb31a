// The ledger-independent halves of a decision: judging the warm-up cap and the
// period quota from two counter values, and building the Decision.
#include "quotum/engine/ledger.h"

#include <algorithm>
#include <limits>

namespace quotum::engine {
namespace {

using Verdict = QuotaOutcome::Verdict;

/// A rate-limited denial: the first refused rule's retry, or its whole window
/// when no wait helps (a cost above the limit).
void DenyByRate(const Verdicts& v, Decision& d) {
  const RateOutcome& o = v.rates[static_cast<size_t>(v.refused)];
  d.reason = DenyReason::kRateLimited;
  d.rule = ratelimit::CategoryName(o.category);
  d.retry_ns = o.retry_ns < 0 ? o.window_ns : o.retry_ns;
}

void AddShadowDenials(const CheckProgram& p, const Verdicts& v, Decision& d) {
  for (size_t i = 0; i < v.rates.size(); ++i) {
    if (v.rate_shadow_denied & (1u << i)) {
      d.shadow_denied.emplace_back(ratelimit::CategoryName(v.rates[i].category));
    }
  }
  if (v.warmup_shadow_denied) d.shadow_denied.emplace_back("warmup");
  if (v.quota_shadow_denied) d.shadow_denied.emplace_back(p.quota.meter_name);
  if (v.credits_shadow_denied) d.shadow_denied.emplace_back(p.credits->meter_name);
}

/// Takes `cut` admitted units back out of `q`: first from its overage, the
/// rest back under the limit.
void TrimAdmitted(QuotaOutcome& q, uint64_t cut) {
  q.admitted -= cut;
  const uint64_t over = std::min(q.overage, cut);
  q.overage -= over;
  if (q.remaining != std::numeric_limits<uint64_t>::max()) q.remaining += cut - over;
}

CreditsUse CreditsUseOf(const CreditsCheck& c, const Verdicts& v, uint64_t consumed) {
  CreditsUse u;
  u.per_unit = c.per_unit;
  u.limit = v.credits_limit;
  u.charged = consumed * c.per_unit;
  const uint64_t after = v.credits_before + u.charged;
  u.remaining = !u.limit           ? std::numeric_limits<uint64_t>::max()
                : *u.limit > after ? *u.limit - after
                                   : 0;
  return u;
}

/// What reservation operation `h` did; a reserve's admitted units are held,
/// not consumed (so `d` is changed: consumed 0).
ReservationUse ReservationUseOf(const HoldCheck& h, const Verdicts& v, Decision& d) {
  ReservationUse u;
  u.id = std::string(h.id);
  u.expires_at = v.hold_expires_at;
  switch (h.op) {
    case HoldCheck::Op::kReserve:
      u.state = ReservationUse::State::kHeld;
      u.units = d.allowed ? d.consumed : d.requested;
      d.consumed = 0;
      d.overage = 0;
      break;
    case HoldCheck::Op::kCommit:
      u.state = ReservationUse::State::kCommitted;
      u.units = v.hold_units;
      break;
    case HoldCheck::Op::kRelease:
      u.state = ReservationUse::State::kReleased;
      u.units = v.hold_units;
      break;
  }
  return u;
}

}  // namespace

std::optional<uint64_t> LimitWithTopups(std::optional<uint64_t> limit, bool has_topups,
                                        uint64_t counter, uint64_t left) {
  if (!limit || !has_topups) return limit;
  const uint64_t base = std::max(*limit, counter);
  return base > kMaxCounter - std::min(left, kMaxCounter) ? kMaxCounter : base + left;
}

uint64_t TopupDrawOf(std::optional<uint64_t> limit, uint64_t counter, uint64_t units,
                     uint64_t left) {
  if (!limit || units == 0) return 0;
  const uint64_t past_before = counter > *limit ? counter - *limit : 0;
  const uint64_t after = counter + units;
  const uint64_t past_after = after > *limit ? after - *limit : 0;
  return std::min(past_after - past_before, left);
}

void JudgeQuota(const CheckProgram& p, uint64_t warmup_used, uint64_t counter, Verdicts& v) {
  uint64_t quantity = p.quota.quantity;
  v.quota_limit = LimitWithTopups(p.quota.limit, v.quota_topups, counter, v.topup_left);
  OnLimit on_limit = p.quota.on_limit;
  // Held units count as used; a commit or release first frees its own.
  const bool frees = p.hold && p.hold->op != HoldCheck::Op::kReserve;
  const uint64_t held =
      frees ? v.held_before - std::min(v.held_before, v.hold_units) : v.held_before;
  counter = counter > kMaxCounter - std::min(held, kMaxCounter) ? kMaxCounter + 1 : counter + held;
  if (frees && quantity <= v.hold_units) on_limit = OnLimit::kAllow;  // held, so it fits
  v.warmup_used = warmup_used;
  if (p.warmup) {
    const uint64_t left = p.warmup->cap > warmup_used ? p.warmup->cap - warmup_used : 0;
    if (quantity > left) {
      if (p.warmup->shadow) {
        v.warmup_shadow_denied = true;
      } else if (p.partial && left > 0) {
        quantity = left;
      } else {
        v.warmup_denied = true;
      }
    }
  }
  v.quota = DecideQuota(QuotaRequest{counter, v.quota_limit, quantity, p.partial, on_limit});
  if (v.quota.verdict == Verdict::kDenied && p.quota.shadow) {
    // Shadow mode: record the would-be denial, admit like a soft limit.
    v.quota_shadow_denied = true;
    v.quota.verdict = Verdict::kAdmitted;
    v.quota.overage = quantity - v.quota.remaining;
    v.quota.admitted = quantity;
    v.quota.remaining = 0;
  }
}

void JudgeCredits(const CheckProgram& p, uint64_t counter, Verdicts& v) {
  v.credits_before = counter;
  if (p.credits) {
    v.credits_limit =
        LimitWithTopups(p.credits->limit, v.credits_topups, counter, v.credits_topup_left);
  }
  // Like decide.lua: nothing to judge when the warm-up cap or the quota
  // already refuses.
  if (!p.credits || v.warmup_denied || v.quota.verdict != Verdict::kAdmitted ||
      v.quota.admitted == 0) {
    return;
  }
  const CreditsCheck& c = *p.credits;
  const uint64_t units = v.quota.admitted;
  if (counter > kMaxCounter || units > (kMaxCounter - counter) / c.per_unit) {
    v.quota.verdict = Verdict::kOverflow;
    return;
  }
  if (!v.credits_limit || c.on_limit == OnLimit::kAllow) return;
  const uint64_t left = *v.credits_limit > counter ? *v.credits_limit - counter : 0;
  const uint64_t fit = left / c.per_unit;
  if (units <= fit) return;
  if (c.shadow) {
    v.credits_shadow_denied = true;
  } else if (p.partial && fit > 0) {
    TrimAdmitted(v.quota, units - fit);
  } else {
    v.credits_denied = true;
  }
}

void JudgeTier(const CheckProgram& p, Verdicts& v) {
  if (!p.tier || !v.tier_checked || !v.tier_limit || v.warmup_denied || v.credits_denied ||
      v.quota.verdict != Verdict::kAdmitted || v.quota.admitted <= v.tier_fit) {
    return;
  }
  if (p.partial && v.tier_fit > 0) {
    TrimAdmitted(v.quota, v.quota.admitted - v.tier_fit);
  } else {
    v.tier_denied = true;
  }
}

Decision DecisionOf(const CheckProgram& p, const Verdicts& v, absl::Time now) {
  Decision d;
  d.meter = std::string(p.quota.meter_name);
  d.requested = p.quota.quantity;
  d.limit = v.quota_limit;
  d.period_start = p.quota.UnitsPeriod().start;
  d.reset_at = p.quota.UnitsPeriod().end;
  d.late = p.quota.late_period.has_value();
  if (p.warmup) d.warmup_cap = p.warmup->cap;
  d.warmup_used = v.warmup_used;
  d.rates = v.rates;
  AddShadowDenials(p, v, d);
  if (v.refused >= 0) {
    DenyByRate(v, d);
  } else if (v.warmup_denied) {
    d.reason = DenyReason::kWarmupLimit;
    d.rule = "warmup";
    d.retry_ns = absl::ToInt64Nanoseconds(p.warmup->day_end - now);
  } else if (v.quota.verdict == Verdict::kDenied) {
    d.reason = DenyReason::kQuotaExceeded;
    d.rule = std::string(p.quota.meter_name);
  } else if (v.credits_denied) {
    d.reason = DenyReason::kQuotaExceeded;
    d.rule = std::string(p.credits->meter_name);
  } else if (v.tier_denied) {
    d.reason = DenyReason::kTierLimit;
    d.rule = "tier";
    // Until the oldest recipient counted leaves the 24 h window.
    const absl::Time frees = absl::FromUnixMillis(v.tier_oldest_ms + kTierWindowMs);
    d.retry_ns = std::max<int64_t>(absl::ToInt64Nanoseconds(frees - now), 0);
  }
  d.allowed = d.reason == DenyReason::kNone;
  d.remaining = v.quota.remaining;
  if (p.dry_run || !d.allowed) {
    // Nothing is charged: what is left now, before the units it would take.
    if (v.quota.verdict == Verdict::kAdmitted && v.quota_limit) {
      d.remaining = v.quota.remaining + v.quota.admitted - v.quota.overage;
    }
    if (!v.quota_limit) d.remaining = std::numeric_limits<uint64_t>::max();
  } else {
    d.consumed = v.quota.admitted;
    d.overage = v.quota.overage;
  }
  if (p.credits) d.credits = CreditsUseOf(*p.credits, v, d.consumed);
  if (p.hold) d.reservation = ReservationUseOf(*p.hold, v, d);
  if (v.tier_checked) d.tier = TierUse{v.tier_level, v.tier_limit, v.tier_used};
  return d;
}

}  // namespace quotum::engine
