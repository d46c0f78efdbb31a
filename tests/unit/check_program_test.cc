// CompileChecks is pure: a catalog, tenant facts and a request in, a check list out.
#include "quotum/engine/check_program.h"

#include <fstream>
#include <sstream>

#include "example_config.h"
#include "gtest/gtest.h"
#include "quotum/config/config.h"
#include "quotum/engine/engine.h"
#include "support/time_literal.h"

namespace quotum::engine {
namespace {

using ratelimit::Category;

constexpr char kExtraPlans[] = R"(
[plans.warm]
rate_limit_profile = "premium"
warmup = [2, 3]
shadow = ["messages_sent", "warmup"]
[plans.warm.limits]
messages_sent = 10
)";

class CompileChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_ = ::quotum::testing::LoadExampleWith(kExtraPlans);
    ASSERT_TRUE(cfg_);
    sent_ = *catalog().FindMeter(meters::kMessagesSent);
  }
  const Catalog& catalog() const { return cfg_->catalog; }

  /// Facts of a tenant on `plan` with no overrides, key "key-1", no session.
  CompileInput Input(absl::string_view plan) const {
    CompileInput in;
    in.rate_rules = &cfg_->rate_rules;
    in.messages_sent_meter = sent_;
    in.credits_meter = *catalog().FindMeter(meters::kCredits);
    in.plan = catalog().FindPlan(plan);
    in.profile = catalog().FindProfile(in.plan->rate_limit_profile);
    in.overrides = &overrides_;
    in.period = {T("2025-03-01T00:00:00Z"), T("2025-04-01T00:00:00Z")};
    in.key_id = key_id_;
    in.now = T("2025-03-10T12:00:00Z");
    return in;
  }
  static MeterRequest Request(absl::string_view meter, uint64_t quantity) {
    MeterRequest r;
    r.meter = std::string(meter);
    r.quantity = quantity;
    r.channel = "whatsapp";
    r.operation = "consume";
    return r;
  }

  std::shared_ptr<const config::Config> cfg_;
  MeterId sent_ = 0;
  std::vector<std::optional<uint64_t>> overrides_;
  std::string key_id_ = "key-1";
};

TEST_F(CompileChecksTest, ALateEventCountsInTheClosedPeriodUnenforced) {
  CompileInput in = Input("starter");
  const BillingPeriod closed{T("2025-02-01T00:00:00Z"), T("2025-03-01T00:00:00Z")};
  in.late_period = closed;
  const CheckProgram p = CompileChecks(in, Request(meters::kMessagesSent, 3), sent_);
  ASSERT_TRUE(p.quota.late_period.has_value());
  EXPECT_EQ(p.quota.UnitsPeriod(), closed);
  EXPECT_EQ(p.quota.period, in.period);  // the api_call's
  EXPECT_FALSE(p.quota.limit.has_value());
  EXPECT_TRUE(p.quota.alert_thresholds.empty());
  EXPECT_EQ(p.rates.size(), 1u);  // the general rule still applies to the call

  const CheckProgram now =
      CompileChecks(Input("starter"), Request(meters::kMessagesSent, 3), sent_);
  EXPECT_FALSE(now.quota.late_period.has_value());
  EXPECT_EQ(now.quota.UnitsPeriod(), now.quota.period);
  EXPECT_TRUE(now.quota.limit.has_value());
}

TEST_F(CompileChecksTest, PlainRequestPaysTheGeneralRuleAndThePeriodQuota) {
  MeterRequest req = Request(meters::kMessagesSent, 3);
  const CompileInput in = Input("starter");
  const CheckProgram p = CompileChecks(in, req, sent_);

  ASSERT_EQ(p.rates.size(), 1u);
  EXPECT_EQ(p.rates[0].category, Category::kGeneral);
  EXPECT_EQ(p.rates[0].subject, "key-1");
  EXPECT_EQ(p.rates[0].cost, 1u);
  EXPECT_EQ(p.rates[0].rule.limit, in.profile->general);
  EXPECT_EQ(p.rates[0].rule.window_ns, cfg_->rate_rules[Category::kGeneral].window_ns);
  EXPECT_FALSE(p.warmup);
  EXPECT_FALSE(p.sends);
  EXPECT_EQ(p.quota.meter, sent_);
  EXPECT_EQ(p.quota.meter_name, meters::kMessagesSent);
  EXPECT_EQ(p.quota.quantity, 3u);
  EXPECT_EQ(p.quota.limit, std::optional<uint64_t>(1000));
  EXPECT_FALSE(p.quota.shadow);
  EXPECT_EQ(p.quota.period.end, T("2025-04-01T00:00:00Z"));
  EXPECT_TRUE(p.idempotency_key.empty());
  EXPECT_EQ(p.fingerprint, 0u);
}

TEST_F(CompileChecksTest, OverridesAndCustomKeyLimitsChangeTheLimits) {
  overrides_.assign(catalog().meter_count(), std::nullopt);
  overrides_[sent_] = 5;
  CompileInput in = Input("starter");
  in.key_limits.general = 7;
  const CheckProgram p = CompileChecks(in, Request(meters::kMessagesSent, 1), sent_);
  EXPECT_EQ(p.quota.limit, std::optional<uint64_t>(5));
  ASSERT_EQ(p.rates.size(), 1u);
  EXPECT_EQ(p.rates[0].rule.limit, 7u);
}

TEST_F(CompileChecksTest, IdempotencyKeyIsKeptWithAFingerprintExceptOnADryRun) {
  MeterRequest req = Request(meters::kMessagesSent, 1);
  req.idempotency_key = "k1";
  const CheckProgram p = CompileChecks(Input("starter"), req, sent_);
  EXPECT_EQ(p.idempotency_key, "k1");
  EXPECT_NE(p.fingerprint, 0u);

  MeterRequest other = req;
  other.quantity = 2;
  EXPECT_NE(CompileChecks(Input("starter"), other, sent_).fingerprint, p.fingerprint);

  req.dry_run = true;
  const CheckProgram check = CompileChecks(Input("starter"), req, sent_);
  EXPECT_TRUE(check.dry_run);
  EXPECT_TRUE(check.idempotency_key.empty());
  EXPECT_EQ(check.fingerprint, 0u);
}

TEST_F(CompileChecksTest, SendingThroughASessionAddsTheMessagesRuleAndTheWarmupCap) {
  SessionState s;
  s.first_working_at = T("2025-03-09T06:00:00Z");  // day 1 at `now`
  CompileInput in = Input("warm");
  in.session = &s;
  MeterRequest req = Request(meters::kMessagesSent, 4);
  req.session_id = "s1";
  req.partial = true;
  const CheckProgram p = CompileChecks(in, req, sent_);

  EXPECT_TRUE(p.sends);
  EXPECT_TRUE(p.partial);
  ASSERT_EQ(p.rates.size(), 2u);
  EXPECT_EQ(p.rates[0].category, Category::kGeneral);
  EXPECT_EQ(p.rates[1].category, Category::kMessages);
  EXPECT_EQ(p.rates[1].subject, "s1");
  EXPECT_EQ(p.rates[1].cost, 4u);
  EXPECT_EQ(p.rates[1].rule.limit, in.profile->messages);
  ASSERT_TRUE(p.warmup);
  EXPECT_EQ(p.warmup->session_id, "s1");
  EXPECT_EQ(p.warmup->day, 1);
  EXPECT_EQ(p.warmup->cap, 3u);
  EXPECT_EQ(p.warmup->day_end, T("2025-03-11T06:00:00Z"));
  EXPECT_TRUE(p.warmup->shadow);
  EXPECT_TRUE(p.quota.shadow);
  EXPECT_EQ(p.quota.limit, std::optional<uint64_t>(10));
}

TEST_F(CompileChecksTest, NoWarmupOnceTheRampIsOverOrForOtherMetersOrWithoutApiCall) {
  SessionState s;
  s.first_working_at = T("2025-03-01T00:00:00Z");  // day 9: past [2, 3]
  CompileInput in = Input("warm");
  in.session = &s;
  MeterRequest req = Request(meters::kMessagesSent, 1);
  req.session_id = "s1";
  EXPECT_FALSE(CompileChecks(in, req, sent_).warmup);

  const MeterId ai = *catalog().FindMeter(meters::kAiTokens);
  const CheckProgram other = CompileChecks(in, Request(meters::kAiTokens, 1), ai);
  EXPECT_FALSE(other.sends);
  EXPECT_EQ(other.rates.size(), 1u);

  req.count_api_call = false;
  const CheckProgram events = CompileChecks(in, req, sent_);
  ASSERT_EQ(events.rates.size(), 1u);
  EXPECT_EQ(events.rates[0].category, Category::kMessages);
}

}  // namespace
}  // namespace quotum::engine
