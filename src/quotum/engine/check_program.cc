// Compiling a metering request into its CheckProgram (pure).
#include "quotum/engine/check_program.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "quotum/engine/engine.h"

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

uint64_t FingerprintOf(const MeterRequest& r) {
  // A text message adds nothing: keys stored before types existed still match.
  const std::string type =
      r.type == MessageType::kText ? "" : absl::StrCat("|", MessageTypeName(r.type));
  // Nor does a plain charge: only a reservation operation names its own.
  const std::string hold = r.hold
                               ? absl::StrCat("|hold:", static_cast<int>(*r.hold), ":", r.hold_id,
                                              ":", absl::ToInt64Milliseconds(r.hold_ttl))
                               : "";
  return StableHash(absl::StrCat(r.operation, "|", r.meter, "|", r.quantity, "|", r.channel, "|",
                                 r.partial ? 1 : 0, "|", r.session_id, type, hold));
}

}  // namespace

std::optional<uint64_t> LimitOf(const Plan& plan,
                                const std::vector<std::optional<uint64_t>>* overrides, MeterId m,
                                const Catalog* catalog, const std::vector<AddonRecord>* addons) {
  std::optional<uint64_t> limit = plan.limits[m];
  if (overrides && !overrides->empty() && (*overrides)[m]) limit = (*overrides)[m];
  if (!limit || !catalog || !addons) return limit;
  for (const AddonRecord& a : *addons) {
    if (a.meter != catalog->meters[m].name) continue;
    limit = *limit > kMaxCounter - a.units ? kMaxCounter : *limit + a.units;
  }
  return limit;
}

RateCheck CompileRate(const ratelimit::RuleSpec& spec, const RateLimitProfile& profile,
                      const KeyRateLimits& key_limits, Category category, absl::string_view subject,
                      uint64_t cost) {
  RateCheck c;
  c.category = category;
  c.subject = subject;
  c.cost = cost;
  c.rule = {spec.algorithm, spec.limit.value_or(ProfileLimit(profile, key_limits, category)),
            spec.window_ns};
  c.shadow = spec.shadow;
  return c;
}

WarmupDay WarmupDayAt(absl::Time first_working_at, absl::Time now) {
  absl::Duration rem;
  const int64_t day = absl::IDivDuration(now - first_working_at, absl::Hours(24), &rem);
  return WarmupDay{day, first_working_at + absl::Hours(24) * (day + 1)};
}

std::optional<WarmupCheck> CompileWarmup(const Plan& plan, const SessionState& session,
                                         absl::string_view session_id, absl::Time now) {
  if (plan.warmup.empty() || !session.first_working_at) return std::nullopt;
  const WarmupDay day = WarmupDayAt(*session.first_working_at, now);
  if (day.index < 0 || day.index >= static_cast<int64_t>(plan.warmup.size())) return std::nullopt;
  WarmupCheck w;
  w.session_id = session_id;
  w.day = day.index;
  w.cap = plan.warmup[static_cast<size_t>(day.index)];
  w.day_end = day.end;
  w.shadow = plan.warmup_shadow;
  return w;
}

TopupGrants TopupGrantsOf(const std::vector<TopupRecord>* topups, absl::string_view meter,
                          absl::Time now) {
  TopupGrants out;
  if (topups == nullptr) return out;
  for (const TopupRecord& t : *topups) {
    if (t.meter == meter && t.expires_at > now) out.push_back({t.id, t.units, t.expires_at});
  }
  std::stable_sort(out.begin(), out.end(), [](const TopupGrant& a, const TopupGrant& b) {
    return std::tie(a.expires_at, a.id) < std::tie(b.expires_at, b.id);
  });
  return out;
}

TopupBalance TopupBalanceOf(const std::vector<TopupRecord>& topups, absl::string_view meter,
                            absl::Time now) {
  TopupBalance b;
  for (const TopupRecord& t : topups) {
    if (t.meter != meter || t.expires_at <= now) continue;
    b.any = true;
    b.left += t.Left();
  }
  return b;
}

std::optional<CreditsCheck> CompileCredits(const CompileInput& in, const MeterRequest& req,
                                           MeterId meter) {
  if (meter != in.messages_sent_meter || in.catalog == nullptr) return std::nullopt;
  const MeterId m = in.credits_meter;
  std::optional<uint64_t> limit = LimitOf(*in.plan, in.overrides, m, in.catalog, in.addons);
  if (!limit) return std::nullopt;  // the plan does not sell messages by credits
  CreditsCheck c;
  c.meter = m;
  c.meter_name = meters::kCredits;
  const std::string& channel = in.catalog->ChannelOr(req.channel);
  c.per_unit = in.catalog->CreditCost(channel, req.type);
  c.limit = limit;
  if (!in.late_period) c.topups = TopupGrantsOf(in.topups, c.meter_name, in.now);
  c.on_limit = in.plan->on_limit[m];
  c.shadow = in.plan->shadow[m];
  c.alert_thresholds = in.plan->alert_thresholds;
  return c;
}

std::optional<TierCheck> CompileTier(const CompileInput& in, const MeterRequest& req,
                                     MeterId meter) {
  if (in.session == nullptr || meter != in.messages_sent_meter || in.catalog == nullptr ||
      !in.plan->messaging_tiers || req.quantity == 0 || req.messages.size() < req.quantity) {
    return std::nullopt;
  }
  const TierPolicy& policy = *in.plan->messaging_tiers;
  const std::string& channel = in.catalog->ChannelOr(req.channel);
  if (std::find(policy.channels.begin(), policy.channels.end(), channel) == policy.channels.end() ||
      !policy.types[static_cast<size_t>(req.type)]) {
    return std::nullopt;
  }
  TierCheck t;
  t.session_id = req.session_id;
  t.policy = &policy;
  t.recipients.reserve(req.quantity);
  for (uint64_t i = 0; i < req.quantity; ++i) t.recipients.push_back(req.messages[i].to);
  return t;
}

CheckProgram CompileChecks(const CompileInput& in, const MeterRequest& req, MeterId meter) {
  CheckProgram p;
  p.tenant_id = in.tenant_id;
  p.partial = req.partial;
  p.dry_run = req.dry_run;
  p.count_api_call = req.count_api_call;
  p.sends = in.session != nullptr && meter == in.messages_sent_meter && !req.dry_run;
  if (in.session) {
    p.sending_session = req.session_id;
    if (in.session->first_working_at) p.sending_first_working = *in.session->first_working_at;
  }
  if (!req.idempotency_key.empty() && !req.dry_run) {
    p.idempotency_key = req.idempotency_key;
    p.fingerprint = FingerprintOf(req);
  }
  // The general rule is charged once per HTTP request (with its api_call).
  const ratelimit::RuleSet& rules = *in.rate_rules;
  if (req.count_api_call) {
    p.rates.push_back(CompileRate(rules[Category::kGeneral], *in.profile, in.key_limits,
                                  Category::kGeneral, in.key_id, 1));
  }
  if (p.sends && !req.paced_later) {
    p.rates.push_back(CompileRate(rules[Category::kMessages], *in.profile, in.key_limits,
                                  Category::kMessages, req.session_id, req.quantity));
  }
  if (p.sends) {
    p.warmup = CompileWarmup(*in.plan, *in.session, req.session_id, in.now);
  }
  QuotaCheck& q = p.quota;
  q.meter = meter;
  q.meter_name = req.meter;
  q.quantity = req.quantity;
  q.limit = LimitOf(*in.plan, in.overrides, meter, in.catalog, in.addons);
  if (q.limit && !in.late_period) q.topups = TopupGrantsOf(in.topups, req.meter, in.now);
  q.on_limit = in.plan->on_limit[meter];
  q.shadow = in.plan->shadow[meter];
  q.alert_thresholds = in.plan->alert_thresholds;
  q.period = in.period;
  q.holdable = meter != in.messages_sent_meter;
  p.credits = CompileCredits(in, req, meter);
  if (p.credits && in.late_period) p.credits->limit = std::nullopt;
  if (!in.late_period && !req.hold) p.tier = CompileTier(in, req, meter);
  if (req.hold) {
    // A reservation holds the meter's own units, whole: no credits, no
    // partial admission, never a dry run.
    p.hold = HoldCheck{*req.hold, req.hold_id, req.hold_ttl};
    p.credits = std::nullopt;
    p.partial = false;
    p.dry_run = false;
  }
  if (in.late_period) {
    q.late_period = in.late_period;
    q.limit = std::nullopt;
    q.shadow = false;
    q.alert_thresholds = {};
  }
  return p;
}

}  // namespace quotum::engine
