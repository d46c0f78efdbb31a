#include "quotum/engine/memory_ledger.h"

#include <algorithm>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {

RatePass DecideRates(TenantState& t, absl::Span<const RateCheck> checks, absl::Time now) {
  RatePass pass;
  const int64_t now_ns = absl::ToUnixNanos(now);
  for (const RateCheck& check : checks) {
    const auto& states = t.Traffic().rate_state[static_cast<int>(check.category)];
    auto it = states.find(check.subject);
    const ratelimit::State state = it == states.end() ? ratelimit::State{} : it->second;
    ratelimit::Result r = ratelimit::Decide(check.rule, state, now_ns, check.cost);
    RateOutcome o;
    o.category = check.category;
    o.limit = check.rule.limit;
    o.remaining = r.remaining;
    o.window_ns = check.rule.window_ns;
    o.reset_ns = r.reset_ns;
    o.retry_ns = r.retry_ns;
    o.allowed = r.allowed;
    o.shadow = check.shadow;
    if (!r.allowed && check.shadow) {
      // Shadow mode: recorded as a would-be denial; the window keeps its state.
      pass.shadow_bits |= 1u << pass.outcomes.size();
      pass.shadow_denied.push_back(ratelimit::CategoryName(check.category));
    } else if (!r.allowed) {
      if (pass.refused < 0) pass.refused = static_cast<int>(pass.outcomes.size());
    } else {
      pass.updates.emplace_back(check.category, check.subject, r.next);
    }
    pass.outcomes.push_back(o);
  }
  return pass;
}

void ApplyRates(TenantState& t, const RatePass& pass) {
  for (const auto& [category, subject, state] : pass.updates) {
    auto& states = t.Traffic().rate_state[static_cast<int>(category)];
    auto it = states.find(subject);
    if (it == states.end()) {
      states.emplace(std::string(subject), state);
    } else {
      it->second = state;
    }
  }
}

absl::StatusOr<LedgerResult> MemoryLedger::Replay(const CheckProgram& p, absl::Time now) {
  LedgerResult r;
  if (p.idempotency_key.empty()) return r;
  auto& seen = t_.Traffic().idempotency;
  auto it = seen.find(p.idempotency_key);
  if (it == seen.end()) return r;
  if (it->second.created_at + opts_.idempotency_ttl <= now) {
    seen.erase(it);
    return r;
  }
  if (it->second.fingerprint != p.fingerprint) {
    r.replay = LedgerResult::Replay::kKeyReused;
  } else if (!it->second.committed) {
    r.replay = LedgerResult::Replay::kFirstPending;
  } else {
    r.replay = LedgerResult::Replay::kReplayed;
    r.decision = it->second.decision;
    r.decision.replayed = true;
  }
  return r;
}

absl::StatusOr<LedgerResult> MemoryLedger::Execute(const CheckProgram& p, absl::Time now) {
  absl::StatusOr<LedgerResult> known = Replay(p, now);
  if (!known.ok() || known->replay != LedgerResult::Replay::kNone) return known;
  LedgerResult& r = *known;
  Verdicts& v = r.verdicts;
  const RatePass pass = DecideRates(t_, p.rates, now);
  v.rates = pass.outcomes;
  v.refused = pass.refused;
  v.rate_shadow_denied = pass.shadow_bits;
  if (!FindHold(p, now, v)) {
    (p.hold->op == HoldCheck::Op::kReserve ? r.hold_exists : r.hold_missing) = true;
    return known;
  }
  // A late event's closed period is not held in memory; it is never enforced.
  v.quota_before = p.quota.late_period ? 0 : t_.used[p.quota.meter];
  v.quota_topups = !p.quota.topups.empty();
  v.topup_left = TopupLeft(p.quota.topups, now);
  if (p.credits) {
    v.credits_topups = !p.credits->topups.empty();
    v.credits_topup_left = TopupLeft(p.credits->topups, now);
  }
  JudgeQuota(p, WarmupUsed(p), v.quota_before, v);
  if (p.credits) JudgeCredits(p, p.quota.late_period ? 0 : t_.used[p.credits->meter], v);
  FindTier(p, now, v);
  JudgeTier(p, v);
  if (v.quota.verdict == QuotaOutcome::Verdict::kOverflow) {
    return QuantityOverflow(p.quota.meter_name);
  }
  r.decision = DecisionOf(p, v, now);
  if (!p.dry_run) {
    Charge(p, pass, r, now);
  } else if (r.decision.allowed && p.count_api_call) {
    // A check that passes pays its general rule and api_call like any request.
    ApplyRates(t_, pass);
    SaturatingIncrement(t_.used[opts_.api_calls_meter]);
  }
  return known;
}

bool MemoryLedger::FindHold(const CheckProgram& p, absl::Time now, Verdicts& v) {
  // No reservation was ever made, or the meter never has any.
  if (!p.hold && (!t_.traffic || !p.quota.holdable)) return true;
  Holds& holds = t_.Traffic().holds;
  holds.GiveBackExpired(now);
  v.held_before = p.quota.late_period ? 0 : holds.HeldOn(p.quota.meter);
  if (!p.hold) return true;
  if (p.hold->op == HoldCheck::Op::kReserve) {
    v.hold_expires_at = now + p.hold->ttl;
    return holds.Find(p.hold->id) == nullptr;
  }
  const HeldUnits* h = holds.Find(p.hold->id);
  if (h == nullptr || h->meter != p.quota.meter) return false;
  v.hold_units = h->units;
  v.hold_expires_at = h->expires_at;
  return true;
}

void MemoryLedger::ApplyHold(const CheckProgram& p, const Decision& d) {
  if (!p.hold || !d.allowed) return;
  Holds& holds = t_.Traffic().holds;
  if (p.hold->op == HoldCheck::Op::kReserve) {
    holds.Add(std::string(p.hold->id),
              HeldUnits{p.quota.meter, d.reservation->units, d.reservation->expires_at});
  } else {
    holds.Remove(p.hold->id);
  }
}

namespace {

/// The longest prefix of `recipients` whose recipients not counted in
/// `window` number at most `left` (one listed twice counts once).
uint64_t TierFitOf(const std::vector<absl::string_view>& recipients, uint64_t left,
                   const RecipientWindow& window) {
  absl::flat_hash_set<absl::string_view> fresh;
  for (size_t i = 0; i < recipients.size(); ++i) {
    const absl::string_view r = recipients[i];
    if (window.Counted(r) || fresh.contains(r)) continue;
    if (fresh.size() == left) return i;
    fresh.insert(r);
  }
  return recipients.size();
}

}  // namespace

void MemoryLedger::FindTier(const CheckProgram& p, absl::Time now, Verdicts& v) {
  if (!p.tier || session_ == nullptr) return;
  SessionTier& st = session_->Tier();
  const int64_t at = st.window.Advance(absl::ToUnixMillis(now));
  AdvanceTier(*p.tier->policy, st.window.unique_7d(), at, st.level);
  v.tier_checked = true;
  v.tier_level = st.level.level;
  v.tier_limit = TierLimitAt(*p.tier->policy, st.level.level);
  v.tier_used = st.window.unique_24h();
  v.tier_oldest_ms = st.window.OldestCounted().value_or(0);
  const uint64_t left = !v.tier_limit                 ? UINT64_MAX
                        : *v.tier_limit > v.tier_used ? *v.tier_limit - v.tier_used
                                                      : 0;
  v.tier_fit = TierFitOf(p.tier->recipients, left, st.window);
}

void MemoryLedger::RecordTier(const CheckProgram& p, LedgerResult& r) {
  Verdicts& v = r.verdicts;
  // An unlimited level has no cap and no next step: nothing to count.
  if (!v.tier_checked || !v.tier_limit || session_ == nullptr || r.decision.consumed == 0) return;
  SessionTier& st = session_->Tier();
  v.tier_level_before = st.level;
  absl::flat_hash_set<absl::string_view> seen;
  for (uint64_t i = 0; i < r.decision.consumed && i < p.tier->recipients.size(); ++i) {
    const absl::string_view to = p.tier->recipients[i];
    if (!seen.insert(to).second) continue;
    const std::optional<int64_t> previous = st.window.LastSent(to);
    v.tier_recorded.push_back(TierRecord{std::string(to), st.window.Record(to), previous});
  }
  MarkQualified(*p.tier->policy, st.window.unique_7d(), st.window.now_ms(), st.level);
}

uint64_t MemoryLedger::WarmupUsed(const CheckProgram& p) const {
  if (!p.warmup || session_ == nullptr) return 0;
  return session_->warmup_day == p.warmup->day ? session_->warmup_count : 0;
}

void MemoryLedger::Charge(const CheckProgram& p, const RatePass& pass, LedgerResult& r,
                          absl::Time now) {
  const Decision& d = r.decision;
  if (d.allowed) ApplyRates(t_, pass);
  r.verdicts.charged = d.consumed;
  if (p.credits) r.verdicts.credits_charged = d.consumed * p.credits->per_unit;
  if (!p.quota.late_period) {
    Verdicts& v = r.verdicts;
    uint64_t& used = t_.used[p.quota.meter];
    DrawTopups(p.quota.topups, TopupDrawOf(p.quota.limit, used, d.consumed, v.topup_left), now, v);
    used += d.consumed;
    if (p.credits) {
      uint64_t& credits = t_.used[p.credits->meter];
      DrawTopups(p.credits->topups,
                 TopupDrawOf(p.credits->limit, credits, v.credits_charged, v.credits_topup_left),
                 now, v);
      credits += v.credits_charged;
    }
  }
  ApplyHold(p, d);
  if (p.count_api_call) SaturatingIncrement(t_.used[opts_.api_calls_meter]);
  if (!p.idempotency_key.empty()) {
    t_.Traffic().idempotency[p.idempotency_key] = IdempotencyEntry{p.fingerprint, d, now, false};
    SweepIdempotency(now);
  }
  if (p.warmup && session_ != nullptr && d.consumed > 0) {
    session_->warmup_day = p.warmup->day;
    session_->warmup_count = r.verdicts.warmup_used + d.consumed;
  }
  RecordTier(p, r);
}

uint64_t MemoryLedger::TopupLeft(const TopupGrants& grants, absl::Time now) const {
  uint64_t left = 0;
  for (const TopupGrant& g : grants) {
    if (g.expires_at <= now) continue;
    for (const TopupRecord& t : t_.topups) {
      if (t.id == g.id) left += t.Left();
    }
  }
  return left;
}

void MemoryLedger::DrawTopups(const TopupGrants& grants, uint64_t units, absl::Time now,
                              Verdicts& v) {
  for (const TopupGrant& g : grants) {
    if (units == 0) return;
    if (g.expires_at <= now) continue;
    for (TopupRecord& t : t_.topups) {
      if (t.id != g.id || t.Left() == 0) continue;
      const uint64_t take = std::min(units, t.Left());
      t.drawn += take;
      units -= take;
      v.topup_draws.emplace_back(t.id, take);
    }
  }
}

void MemoryLedger::SweepIdempotency(absl::Time now) {
  TenantTraffic& traffic = t_.Traffic();
  if (traffic.idempotency.size() < traffic.idempotency_sweep_at) return;
  absl::erase_if(traffic.idempotency, [&](const auto& kv) {
    return kv.second.committed && kv.second.created_at + opts_.idempotency_ttl <= now;
  });
  traffic.idempotency_sweep_at = std::max<size_t>(64, traffic.idempotency.size() * 2);
}

}  // namespace quotum::engine
