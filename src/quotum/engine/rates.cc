// Engine: short-window rules (general, messages, sessions, qr), evaluated
// together with a request's other rules and applied all or nothing.
#include "absl/strings/str_cat.h"
#include "quotum/core/quota.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {
using ratelimit::Category;

RatePass Engine::EvaluateRates(TenantState& t, const Principal& who,
                               absl::Span<const RuleTarget> targets, absl::Time now) {
  RateChecks checks;
  for (const RuleTarget& target : targets) {
    checks.push_back(CompileRate(opts_.rate_rules[target.category], *t.profile, who.limits,
                                 target.category, target.subject, target.cost));
  }
  return DecideRates(t, checks, now);
}

Decision Engine::RateDenial(const RatePass& pass) {
  const RateOutcome& o = pass.outcomes[static_cast<size_t>(pass.refused)];
  Decision d;
  d.allowed = false;
  d.reason = DenyReason::kRateLimited;
  d.rule = ratelimit::CategoryName(o.category);
  d.retry_ns = o.retry_ns < 0 ? o.window_ns : o.retry_ns;
  d.rates = pass.outcomes;
  d.shadow_denied = pass.shadow_denied;
  return d;
}

void Engine::CountDecision(const Decision& d, std::optional<MeterId> meter) {
  if (d.allowed && d.shadow_denied.empty()) {
    // The hot case: one relaxed increment of a cached counter.
    auto m = meter ? meter : d.meter.empty() ? std::nullopt : opts_.catalog->FindMeter(d.meter);
    allowed_counters_[m ? *m : allowed_counters_.size() - 1]->fetch_add(1,
                                                                        std::memory_order_relaxed);
    return;
  }
  const std::string meter_name = d.meter.empty() ? "none" : d.meter;
  if (d.allowed) {
    stats_.decisions.Add({meter_name, "allowed", "none"});
  } else {
    stats_.decisions.Add({meter_name, "denied", d.rule});
  }
  for (const auto& r : d.shadow_denied) stats_.decisions.Add({meter_name, "shadow_denied", r});
}

Decision Engine::Admit(const Principal& who) {
  TenantState& t = *who.tenant;
  Decision d;
  {
    MutexLock lock(&t.mu);
    const absl::Time now = clock_->Now();
    Touch(t, now);
    RatePass pass = EvaluateRates(t, who, {{Category::kGeneral, who.key_id}}, now);
    CountApiCallLocked(t, now);  // every authenticated request, admitted or not
    if (pass.refused >= 0) {
      d = RateDenial(pass);
    } else {
      ApplyRates(t, pass);
      d.allowed = true;
      d.rates = std::move(pass.outcomes);
      d.shadow_denied = std::move(pass.shadow_denied);
    }
  }
  CountDecision(d);
  return d;
}

absl::StatusOr<Decision> Engine::AdmitRequest(const Principal& who) {
  if (!opts_.shared_ledger) return Admit(who);
  TenantState& t = *who.tenant;
  const absl::Time now = clock_->Now();
  CheckProgram p;
  p.tenant_id = t.id;
  {
    MutexLock lock(&t.mu);
    Touch(t, now);
    p.rates.push_back(CompileRate(opts_.rate_rules[Category::kGeneral], *t.profile, who.limits,
                                  Category::kGeneral, who.key_id, 1));
    // No quota: zero units of api_calls, unlimited; the api_call itself is counted.
    p.quota.meter = api_calls_meter_;
    p.quota.meter_name = meters::kApiCalls;
    p.quota.period = t.period;
  }
  const UsageFacts facts{std::string(meters::kApiCalls),
                         "",
                         p.quota.period.start,
                         now,
                         now,
                         0,
                         {},
                         std::nullopt,
                         {},
                         {},
                         std::nullopt,
                         std::nullopt};
  p.facts = &facts;
  absl::StatusOr<LedgerResult> x = ExecuteShared(t, p, now);
  if (!x.ok() && FailsOpen(x.status())) return AdmitFailOpen(p, facts);
  if (!x.ok()) return x.status();
  Decision d = std::move(x->decision);
  d.meter.clear();
  d.requested = 0;
  d.limit.reset();
  CountDecision(d);
  drain_->Notify(t.id);
  return d;
}

absl::AnyInvocable<void()> Engine::CommitWithApiCall(TenantState& t,
                                                     absl::FunctionRef<void(CommitBatch&)> fill,
                                                     CommitQueue::Done done) {
  const absl::Time now = clock_->Now();
  const absl::Time period_start = t.period.start;
  // A failed commit takes the call back out of memory too: the counter holds
  // only what the store holds (the nightly sync writes it back into the store).
  CommitQueue::Done counted = [this, &t, period_start,
                               done = std::move(done)](const absl::Status& s) mutable {
    if (!s.ok()) {
      MutexLock lock(&t.mu);
      uint64_t& calls = t.used[api_calls_meter_];
      if (t.period.start == period_start && calls > 0) --calls;
    }
    done(s);
  };
  SaturatingIncrement(t.used[api_calls_meter_]);
  bool queued = queue_.Enqueue(
      [&](CommitBatch& b) {
        fill(b);
        b.usage.push_back(ApiCallRow(t, period_start, now));
      },
      counted);
  if (queued) return nullptr;
  return FailLater(std::move(counted));  // fails it, which takes the call back
}

std::optional<uint64_t> Engine::WarmupCap(const TenantState& t, const SessionState& s,
                                          absl::Time now, int64_t* day) const {
  std::optional<WarmupCheck> w = CompileWarmup(*t.plan, s, "", now);
  if (!w) return std::nullopt;
  *day = w->day;
  return w->cap;
}

}  // namespace quotum::engine
