#include "decision_vectors.h"

#include <boost/json.hpp>
#include <deque>
#include <fstream>
#include <map>
#include <sstream>

#include "gtest/gtest.h"
#include "quotum/engine/errors.h"

namespace quotum::testing {
namespace {

namespace json = boost::json;
using engine::CheckProgram;
using engine::LedgerResult;

/// Owns the strings a CheckProgram views, for the whole run.
struct Strings {
  std::deque<std::string> held;
  std::deque<TierPolicy> policies;
  absl::string_view Hold(json::string_view s) { return held.emplace_back(s); }
};

/// Meter ids in order of first appearance; 0 is api_calls.
struct MeterIds {
  std::map<std::string, MeterId> ids{{"api_calls", 0}};
  MeterId Of(const std::string& name) {
    auto [it, added] = ids.emplace(name, static_cast<MeterId>(ids.size()));
    return it->second;
  }
};

absl::Time At(const json::object& o, const char* field, int64_t fallback_ms) {
  const int64_t ms = o.contains(field) ? o.at(field).to_number<int64_t>() : fallback_ms;
  return DecisionVectorBase() + absl::Milliseconds(ms);
}

ratelimit::Category CategoryOf(json::string_view name) {
  auto c = ratelimit::CategoryFromName(std::string_view(name.data(), name.size()));
  if (!c) ADD_FAILURE() << "unknown category " << name;
  return c.value_or(ratelimit::Category::kGeneral);
}

ratelimit::Algorithm AlgorithmOf(json::string_view name) {
  auto a = ratelimit::AlgorithmFromName(std::string_view(name.data(), name.size()));
  if (!a) ADD_FAILURE() << "unknown algorithm " << name;
  return a.value_or(ratelimit::Algorithm::kSlidingWindow);
}

engine::RateCheck RateOf(const json::object& o, Strings& s) {
  engine::RateCheck c;
  c.category = CategoryOf(o.at("category").as_string());
  c.subject = s.Hold(o.at("subject").as_string());
  c.cost = o.contains("cost") ? o.at("cost").to_number<uint64_t>() : 1;
  c.rule = {AlgorithmOf(o.at("algorithm").as_string()), o.at("limit").to_number<uint64_t>(),
            o.at("window_ms").to_number<int64_t>() * 1'000'000};
  c.shadow = o.contains("shadow") && o.at("shadow").as_bool();
  return c;
}

engine::WarmupCheck WarmupOf(const json::object& o, Strings& s) {
  engine::WarmupCheck w;
  w.session_id = s.Hold(o.at("session").as_string());
  w.day = o.at("day").to_number<int64_t>();
  w.cap = o.at("cap").to_number<uint64_t>();
  w.day_end = At(o, "day_end_ms", 0);
  w.shadow = o.contains("shadow") && o.at("shadow").as_bool();
  return w;
}

/// A check's top-ups: [{id, units, expires_ms (null or absent: never)}],
/// in drawing order as given.
engine::TopupGrants TopupsOf(const json::object& o) {
  engine::TopupGrants out;
  if (!o.contains("topups")) return out;
  for (const auto& t : o.at("topups").as_array()) {
    const json::object& g = t.as_object();
    engine::TopupGrant grant{std::string(g.at("id").as_string()),
                             g.at("units").to_number<uint64_t>()};
    if (g.contains("expires_ms") && !g.at("expires_ms").is_null()) {
      grant.expires_at = At(g, "expires_ms", 0);
    }
    out.push_back(std::move(grant));
  }
  return out;
}

engine::QuotaCheck QuotaOf(const json::object& o, Strings& s, MeterIds& meters) {
  engine::QuotaCheck q;
  q.meter_name = s.Hold(o.at("meter").as_string());
  q.meter = meters.Of(std::string(q.meter_name));
  q.quantity = o.contains("quantity") ? o.at("quantity").to_number<uint64_t>() : 1;
  if (o.contains("limit") && !o.at("limit").is_null())
    q.limit = o.at("limit").to_number<uint64_t>();
  q.on_limit = o.contains("on_limit") && o.at("on_limit").as_string() == "allow" ? OnLimit::kAllow
                                                                                 : OnLimit::kReject;
  q.shadow = o.contains("shadow") && o.at("shadow").as_bool();
  q.period = {At(o, "period_start_ms", 0), At(o, "period_end_ms", 2'592'000'000)};
  q.topups = TopupsOf(o);
  return q;
}

engine::CreditsCheck CreditsOf(const json::object& o, MeterIds& meters) {
  engine::CreditsCheck c;
  c.meter = meters.Of("credits");
  c.meter_name = meters::kCredits;
  c.per_unit = o.at("per_unit").to_number<uint64_t>();
  if (o.contains("limit") && !o.at("limit").is_null())
    c.limit = o.at("limit").to_number<uint64_t>();
  c.on_limit = o.contains("on_limit") && o.at("on_limit").as_string() == "allow" ? OnLimit::kAllow
                                                                                 : OnLimit::kReject;
  c.shadow = o.contains("shadow") && o.at("shadow").as_bool();
  c.topups = TopupsOf(o);
  return c;
}

/// {session, steps, step_up_delay_ms (default 0), recipients}.
engine::TierCheck TierOf(const json::object& o, Strings& s) {
  TierPolicy& policy = s.policies.emplace_back();
  policy.steps.clear();
  for (const auto& n : o.at("steps").as_array()) policy.steps.push_back(n.to_number<uint64_t>());
  policy.step_up_delay = absl::Milliseconds(
      o.contains("step_up_delay_ms") ? o.at("step_up_delay_ms").to_number<int64_t>() : 0);
  engine::TierCheck t;
  t.session_id = s.Hold(o.at("session").as_string());
  t.policy = &policy;
  for (const auto& r : o.at("recipients").as_array()) t.recipients.push_back(s.Hold(r.as_string()));
  return t;
}

bool Flag(const json::object& o, const char* field) {
  return o.contains(field) && o.at(field).as_bool();
}

CheckProgram ProgramOf(const json::object& o, absl::string_view tenant, Strings& s,
                       MeterIds& meters) {
  CheckProgram p;
  p.tenant_id = tenant;
  if (o.contains("rates")) {
    for (const auto& r : o.at("rates").as_array()) p.rates.push_back(RateOf(r.as_object(), s));
  }
  if (o.contains("warmup")) p.warmup = WarmupOf(o.at("warmup").as_object(), s);
  p.quota = QuotaOf(o.at("quota").as_object(), s, meters);
  if (o.contains("late_period") && !o.at("late_period").is_null()) {
    const json::object& late = o.at("late_period").as_object();
    p.quota.late_period = BillingPeriod{At(late, "start_ms", 0), At(late, "end_ms", 0)};
  }
  if (o.contains("credits")) p.credits = CreditsOf(o.at("credits").as_object(), meters);
  if (o.contains("tier")) p.tier = TierOf(o.at("tier").as_object(), s);
  p.partial = Flag(o, "partial");
  p.dry_run = Flag(o, "dry_run");
  p.count_api_call = !o.contains("count_api_call") || o.at("count_api_call").as_bool();
  p.sends = p.warmup.has_value();
  if (o.contains("idempotency_key"))
    p.idempotency_key = s.Hold(o.at("idempotency_key").as_string());
  if (o.contains("fingerprint")) p.fingerprint = o.at("fingerprint").to_number<uint64_t>();
  return p;
}

std::string ReasonName(engine::DenyReason r) {
  switch (r) {
    case engine::DenyReason::kQuotaExceeded:
      return "quota_exceeded";
    case engine::DenyReason::kRateLimited:
      return "rate_limited";
    case engine::DenyReason::kWarmupLimit:
      return "warmup_limit";
    case engine::DenyReason::kTierLimit:
      return "tier_limit";
    case engine::DenyReason::kNone:
      break;
  }
  return "none";
}

void CheckRates(const json::array& want, const engine::RateOutcomes& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const json::object& w = want[i].as_object();
    EXPECT_EQ(got[i].allowed, w.at("allowed").as_bool()) << "rate " << i;
    if (w.contains("remaining")) {
      EXPECT_EQ(got[i].remaining, w.at("remaining").to_number<uint64_t>()) << "rate " << i;
    }
  }
}

void CheckDecision(const json::object& e, const LedgerResult& r) {
  const engine::Decision& d = r.decision;
  EXPECT_EQ(d.allowed, e.at("allowed").as_bool());
  auto u64 = [&](const char* f) { return e.at(f).to_number<uint64_t>(); };
  if (e.contains("reason")) {
    EXPECT_EQ(ReasonName(d.reason), e.at("reason").as_string());
  }
  if (e.contains("rule")) {
    EXPECT_EQ(d.rule, e.at("rule").as_string());
  }
  if (e.contains("consumed")) {
    EXPECT_EQ(d.consumed, u64("consumed"));
  }
  if (e.contains("overage")) {
    EXPECT_EQ(d.overage, u64("overage"));
  }
  if (e.contains("remaining")) {
    EXPECT_EQ(d.remaining, u64("remaining"));
  }
  if (e.contains("limit")) {
    EXPECT_EQ(d.limit, u64("limit"));
  }
  if (e.contains("credits_limit")) {
    ASSERT_TRUE(d.credits.has_value());
    EXPECT_EQ(d.credits->limit, u64("credits_limit"));
  }
  if (e.contains("warmup_used")) {
    EXPECT_EQ(d.warmup_used, u64("warmup_used"));
  }
  if (e.contains("retry_ms")) {
    EXPECT_EQ(d.retry_ns, e.at("retry_ms").to_number<int64_t>() * 1'000'000);
  }
  if (e.contains("replayed")) {
    EXPECT_EQ(d.replayed, e.at("replayed").as_bool());
  }
  if (e.contains("late")) {
    EXPECT_EQ(d.late, e.at("late").as_bool());
  }
  if (e.contains("credits_charged")) {
    ASSERT_TRUE(d.credits.has_value());
    EXPECT_EQ(d.credits->charged, u64("credits_charged"));
  }
  if (e.contains("credits_remaining")) {
    ASSERT_TRUE(d.credits.has_value());
    EXPECT_EQ(d.credits->remaining, u64("credits_remaining"));
  }
  if (e.contains("tier_level")) {
    ASSERT_TRUE(d.tier.has_value());
    EXPECT_EQ(d.tier->level, e.at("tier_level").to_number<uint32_t>());
  }
  if (e.contains("tier_limit")) {
    ASSERT_TRUE(d.tier.has_value());
    if (e.at("tier_limit").is_null()) {
      EXPECT_FALSE(d.tier->limit.has_value());
    } else {
      EXPECT_EQ(d.tier->limit, u64("tier_limit"));
    }
  }
  if (e.contains("tier_used")) {
    ASSERT_TRUE(d.tier.has_value());
    EXPECT_EQ(d.tier->used, u64("tier_used"));
  }
  if (e.contains("shadow_denied")) {
    std::vector<std::string> want;
    for (const auto& n : e.at("shadow_denied").as_array()) want.emplace_back(n.as_string());
    EXPECT_EQ(d.shadow_denied, want);
  }
  if (e.contains("rates") && r.replay == LedgerResult::Replay::kNone) {
    CheckRates(e.at("rates").as_array(), d.rates);
  }
  if (e.contains("counter_before")) {
    ASSERT_EQ(r.replay, LedgerResult::Replay::kNone);
    EXPECT_EQ(r.verdicts.quota_before, u64("counter_before"));
  }
}

void CheckStep(const json::object& e, const absl::StatusOr<LedgerResult>& r) {
  if (e.contains("error")) {
    ASSERT_FALSE(r.ok()) << "expected " << e.at("error").as_string();
    EXPECT_EQ(engine::MachineCode(r.status()), e.at("error").as_string()) << r.status();
    return;
  }
  ASSERT_TRUE(r.ok()) << r.status();
  if (e.contains("replay")) {
    EXPECT_EQ(r->replay, LedgerResult::Replay::kKeyReused) << "expected key_reused";
    return;
  }
  const bool replayed = e.contains("replayed") && e.at("replayed").as_bool();
  EXPECT_EQ(r->replay, replayed ? LedgerResult::Replay::kReplayed : LedgerResult::Replay::kNone);
  CheckDecision(e, *r);
}

/// The sequence's program with the step's fields laid over it.
json::object Overlay(const json::object& base, const json::object& step) {
  json::object merged = base;
  if (step.contains("program")) {
    for (const auto& [k, v] : step.at("program").as_object()) merged[k] = v;
  }
  return merged;
}

json::value LoadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

}  // namespace

absl::Time DecisionVectorBase() {
  // 2026-12-21T00:00:00Z: a whole number of days (and so of every window used).
  return absl::FromUnixSeconds(20'808LL * 86'400);
}

int RunDecisionVectors(const std::string& golden_path, const LedgerFactory& make) {
  const json::value doc = LoadJson(golden_path);
  Strings strings;
  MeterIds meters;
  int steps = 0;
  for (const auto& seq : doc.at("sequences").as_array()) {
    const std::string name(seq.at("name").as_string());
    const absl::string_view tenant = strings.Hold(json::string_view("golden-" + name));
    std::unique_ptr<LedgerUnderTest> ledger = make(name);
    int i = 0;
    for (const auto& step_value : seq.at("steps").as_array()) {
      const json::object& step = step_value.as_object();
      SCOPED_TRACE(name + " step " + std::to_string(i++));
      const json::object program = Overlay(seq.at("program").as_object(), step);
      const CheckProgram p = ProgramOf(program, tenant, strings, meters);
      CheckStep(step.at("expect").as_object(), ledger->Execute(p, At(step, "t_ms", 0)));
      ++steps;
    }
  }
  return steps;
}

}  // namespace quotum::testing
