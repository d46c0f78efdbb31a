// Engine: short-window rules (general, messages, sessions, qr), evaluated
// together with a request's other rules and applied all or nothing.
#include "absl/strings/str_cat.h"
#include "quotum/core/quota.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {
namespace {

using ratelimit::Category;

uint64_t ProfileLimit(const RateLimitProfile& p, const KeyRateLimits& custom, Category c) {
  switch (c) {
    case Category::kGeneral:
      return custom.general.value_or(p.general);
    case Category::kMessages:
      return custom.messages.value_or(p.messages);
    case Category::kSessions:
      return custom.sessions.value_or(p.sessions);
    case Category::kQr:
      return 1;
  }
  return p.general;
}

}  // namespace

Engine::RatePass Engine::EvaluateRates(TenantState& t, const Principal& who,
                                       absl::Span<const RuleTarget> targets, absl::Time now) {
  RatePass pass;
  const int64_t now_ns = absl::ToUnixNanos(now);
  for (const RuleTarget& target : targets) {
    const ratelimit::RuleSpec& spec = opts_.rate_rules[target.category];
    const uint64_t limit =
        spec.limit.value_or(ProfileLimit(*t.profile, who.limits, target.category));
    const auto& states = t.Traffic().rate_state[static_cast<int>(target.category)];
    auto it = states.find(target.subject);
    const ratelimit::State state = it == states.end() ? ratelimit::State{} : it->second;
    ratelimit::Result r =
        ratelimit::Decide({spec.algorithm, limit, spec.window_ns}, state, now_ns, target.cost);
    RateOutcome o;
    o.category = target.category;
    o.limit = limit;
    o.remaining = r.remaining;
    o.window_ns = spec.window_ns;
    o.reset_ns = r.reset_ns;
    o.retry_ns = r.retry_ns;
    o.allowed = r.allowed;
    o.shadow = spec.shadow;
    if (!r.allowed && spec.shadow) {
      // Shadow mode: recorded as a would-be denial; the window keeps its state.
      pass.shadow_denied.push_back(ratelimit::CategoryName(target.category));
    } else if (!r.allowed) {
      if (pass.refused < 0) pass.refused = static_cast<int>(pass.outcomes.size());
    } else {
      pass.updates.emplace_back(target.category, target.subject, r.next);
    }
    pass.outcomes.push_back(o);
  }
  return pass;
}

void Engine::ApplyRates(TenantState& t, RatePass& pass) {
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

absl::AnyInvocable<void()> Engine::CommitWithApiCall(TenantState& t,
                                                     absl::FunctionRef<void(CommitBatch&)> fill,
                                                     CommitQueue::Done done) {
  const absl::Time now = clock_->Now();
  const absl::Time period_start = t.period.start;
  bool queued = queue_.Enqueue(
      [&](CommitBatch& b) {
        fill(b);
        b.usage.push_back(
            UsageDelta{t.id, std::string(meters::kApiCalls), "", period_start, now, 1});
      },
      done);
  if (queued) {
    SaturatingIncrement(t.used[api_calls_meter_]);
    return nullptr;
  }
  return [done = std::move(done)]() mutable { done(ShuttingDown()); };
}

std::optional<uint64_t> Engine::WarmupCap(const TenantState& t, const SessionState& s,
                                          absl::Time now, int64_t* day) const {
  if (t.plan->warmup.empty() || !s.first_working_at) return std::nullopt;
  absl::Duration rem;
  const int64_t d = absl::IDivDuration(now - *s.first_working_at, absl::Hours(24), &rem);
  *day = d;
  if (d < 0 || d >= static_cast<int64_t>(t.plan->warmup.size())) return std::nullopt;
  return t.plan->warmup[static_cast<size_t>(d)];
}

}  // namespace quotum::engine
