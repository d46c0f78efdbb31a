// One decision over every rule: short-window rules, sessions and groups as
// leases, warm-up caps and shadow mode, with a fake clock, on every store.
#include <fstream>
#include <future>
#include <sstream>

#include "gtest/gtest.h"
#include "quotum/config/config.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"
#include "store_backend.h"
#include "support/time_literal.h"
#include "unit/example_config.h"

namespace quotum::engine {
namespace {

using ratelimit::Category;

template <typename T>
absl::StatusOr<T> Wait(std::function<void(Engine::Callback<T>)> call) {
  std::promise<absl::StatusOr<T>> p;
  auto f = p.get_future();
  call([&p](absl::StatusOr<T> r) { p.set_value(std::move(r)); });
  return f.get();
}

constexpr char kExtraPlans[] = R"(
[plans.warm]
rate_limit_profile = "premium"
warmup = [2, 3]

[plans.shadowy]
rate_limit_profile = "premium"
shadow = ["messages_sent", "sessions_active", "warmup"]
warmup = [1]
[plans.shadowy.limits]
messages_sent = 1
sessions_active = 1
)";

class RulesTest : public contract::StoreBackendTest {
 protected:
  void SetUp() override {
    StoreBackendTest::SetUp();
    if (HasFatalFailure()) return;
    cfg_ = ::quotum::testing::LoadExampleWith(kExtraPlans);
    ASSERT_TRUE(cfg_);
    Open();
  }
  void TearDown() override {
    Close();
    StoreBackendTest::TearDown();
  }

  void Open() {
    auto store = OpenStore();
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    EngineOptions o;
    o.catalog = &cfg_->catalog;
    o.default_plan = "starter";
    o.rate_rules = rules_;
    o.session_lease_ttl = absl::Minutes(5);
    engine_ = std::make_unique<Engine>(o, store_.get(), &clock_);
    ASSERT_TRUE(engine_->Start().ok());
  }
  void Close() {
    engine_.reset();
    store_.reset();
  }
  void Reopen() {
    Close();
    Open();
  }

  Principal NewTenant(const std::string& id, const std::string& plan) {
    auto r = Wait<CreatedTenant>([&](auto cb) {
      engine_->CreateTenant({id, id, plan, T("2026-11-01T00:00:00Z")}, std::move(cb));
    });
    EXPECT_TRUE(r.ok()) << r.status();
    secrets_[id] = r->key.secret;
    key_ids_[id] = r->key.key_id;
    return *engine_->Authenticate(r->key.secret);
  }
  Principal Who(const std::string& id) { return *engine_->Authenticate(secrets_[id]); }

  absl::StatusOr<Decision> Send(const Principal& who, const std::string& session, uint64_t q = 1,
                                bool partial = false) {
    MeterRequest req;
    req.meter = "messages_sent";
    req.quantity = q;
    req.partial = partial;
    req.session_id = session;
    req.operation = "test";
    return Wait<Decision>([&](auto cb) { engine_->Consume(who, req, std::move(cb)); });
  }
  absl::StatusOr<Decision> Consume(const Principal& who, const std::string& meter, uint64_t q = 1) {
    MeterRequest req;
    req.meter = meter;
    req.quantity = q;
    req.operation = "test";
    return Wait<Decision>([&](auto cb) { engine_->Consume(who, req, std::move(cb)); });
  }
  absl::StatusOr<Admitted<SessionView>> SetStatus(const Principal& who, const std::string& id,
                                                  const std::string& status) {
    return Wait<Admitted<SessionView>>(
        [&](auto cb) { engine_->UpdateSession(who, id, status, std::move(cb)); });
  }
  void Working(const Principal& who, const std::string& id) {
    auto c = Wait<Admitted<SessionView>>(
        [&](auto cb) { engine_->CreateSession(who, id, "", std::move(cb)); });
    ASSERT_TRUE(c.ok() && c->decision.allowed) << c.status();
    auto w = SetStatus(who, id, "working");
    ASSERT_TRUE(w.ok() && w->decision.allowed) << w.status();
  }
  uint64_t Used(const Principal& who, const char* meter) {
    return engine_->CurrentUsage(who).used[*cfg_->catalog.FindMeter(meter)];
  }
  void RaiseGeneral(const std::string& tenant) {
    KeyRateLimits l;
    l.general = 1'000'000;
    ASSERT_TRUE(Wait<KeyLimitsView>([&](auto cb) {
                  engine_->SetKeyRateLimits(key_ids_[tenant], l, std::move(cb));
                }).ok());
  }

  std::shared_ptr<const config::Config> cfg_;
  FakeClock clock_{T("2026-11-23T12:00:00Z")};
  ratelimit::RuleSet rules_ = ratelimit::RuleSet::Defaults();
  std::unique_ptr<Store> store_;
  std::unique_ptr<Engine> engine_;
  std::map<std::string, std::string> secrets_, key_ids_;
};

TEST_P(RulesTest, GeneralRuleBoundaryAndWindowRoll) {
  Principal p = NewTenant("trial", "starter");  // trial profile: general 50/min
  for (int i = 0; i < 49; ++i) ASSERT_TRUE(Consume(p, "leads_detected")->allowed) << i;  // limit-1
  auto at = Consume(p, "leads_detected");                                                // limit
  ASSERT_TRUE(at->allowed);
  ASSERT_EQ(at->rates.size(), 1u);
  EXPECT_EQ(at->rates[0].limit, 50u);
  EXPECT_EQ(at->rates[0].remaining, 0u);
  auto over = Consume(p, "leads_detected");  // limit+1
  EXPECT_FALSE(over->allowed);
  EXPECT_EQ(over->reason, DenyReason::kRateLimited);
  EXPECT_EQ(over->rule, "general");
  EXPECT_GT(over->retry_ns, 0);
  EXPECT_EQ(Used(p, "leads_detected"), 50u) << "a refused request charges nothing";
  // Reads go through the same rule.
  EXPECT_FALSE(engine_->Admit(p).allowed);
  // The sliding window needs the previous minute to weigh less: 2 windows later all is free.
  clock_.Advance(absl::Minutes(2));
  EXPECT_TRUE(Consume(p, "leads_detected")->allowed);
}

TEST_P(RulesTest, MessagesRuleIsPerSessionAndAllOrNothing) {
  Principal p = NewTenant("pro", "pro");  // standard: messages 30/min per session
  RaiseGeneral("pro");
  p = Who("pro");
  Working(p, "s1");
  Working(p, "s2");
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(Send(p, "s1")->allowed) << i;
  auto over = Send(p, "s1");
  EXPECT_FALSE(over->allowed);
  EXPECT_EQ(over->rule, "messages");
  auto other = Send(p, "s2");
  EXPECT_TRUE(other->allowed) << "another session still sends";
  EXPECT_EQ(Used(p, "messages_sent"), 31u) << "only admitted sends count";
  // A quota refusal charges no rate rule either.
  ASSERT_TRUE(Wait<TenantView>([&](auto cb) {
                engine_->SetLimits("pro", {{"messages_sent", 31}}, std::move(cb));
              }).ok());
  auto quota = Send(p, "s2");
  EXPECT_FALSE(quota->allowed);
  EXPECT_EQ(quota->reason, DenyReason::kQuotaExceeded);
  ASSERT_TRUE(Wait<TenantView>([&](auto cb) {
                engine_->SetLimits("pro", {{"messages_sent", std::nullopt}}, std::move(cb));
              }).ok());
  auto next = Send(p, "s2");
  ASSERT_TRUE(next->allowed);
  ASSERT_EQ(next->rates.size(), 2u);
  EXPECT_EQ(next->rates[1].remaining, 28u) << "s2 sent twice; the refused send did not count";
}

TEST_P(RulesTest, SendsNeedAWorkingSessionOfTheTenant) {
  Principal p = NewTenant("s", "pro");
  EXPECT_EQ(MachineCode(Send(p, "nope").status()), "session_not_found");
  ASSERT_TRUE(Wait<Admitted<SessionView>>([&](auto cb) {
                engine_->CreateSession(p, "idle", "+1555", std::move(cb));
              }).ok());
  auto r = Send(p, "idle");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(MachineCode(r.status()), "session_not_working");
  Principal other = NewTenant("other", "pro");
  EXPECT_EQ(MachineCode(Send(other, "idle").status()), "session_not_found");
  EXPECT_EQ(Used(p, "messages_sent"), 0u);
}

TEST_P(RulesTest, FourthWorkingSessionOnAThreeSessionPlanIsRefused) {
  Principal p = NewTenant("three", "pro");  // sessions_active limit 3
  Working(p, "a");
  Working(p, "b");
  Working(p, "c");
  ASSERT_TRUE(Wait<Admitted<SessionView>>([&](auto cb) {
                engine_->CreateSession(p, "d", "", std::move(cb));
              })->decision.allowed);
  auto d = SetStatus(p, "d", "working");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->decision.allowed);
  EXPECT_EQ(d->decision.reason, DenyReason::kQuotaExceeded);
  EXPECT_EQ(d->decision.meter, "sessions_active");
  EXPECT_EQ(engine_->GetSession(p, "d")->status, "starting") << "a refusal changes nothing";
  EXPECT_EQ(Used(p, "sessions_active"), 3u);
  ASSERT_TRUE(SetStatus(p, "a", "stopped")->decision.allowed);
  EXPECT_TRUE(SetStatus(p, "d", "working")->decision.allowed);
  EXPECT_EQ(Used(p, "sessions_active"), 3u);
}

TEST_P(RulesTest, LeasesExpireWithoutHeartbeatsAndRecordAnEvent) {
  Principal p = NewTenant("lease", "pro");
  Working(p, "kept");
  Working(p, "lost");
  EXPECT_EQ(Used(p, "sessions_active"), 2u);
  clock_.Advance(absl::Minutes(4));
  ASSERT_TRUE(Wait<Admitted<SessionView>>([&](auto cb) {
                engine_->Heartbeat(p, "kept", std::move(cb));
              })->decision.allowed);
  clock_.Advance(absl::Minutes(1) + absl::Seconds(1));
  EXPECT_EQ(Used(p, "sessions_active"), 1u);
  EXPECT_EQ(engine_->GetSession(p, "lost")->status, "stopped");
  EXPECT_EQ(engine_->GetSession(p, "kept")->status, "working");
  Reopen();  // wait for the lease change to commit, then read it back
  p = Who("lease");
  EXPECT_EQ(Used(p, "sessions_active"), 1u);
  auto events = engine_->Events(p, 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, "session.lease_expired");
  EXPECT_EQ((*events)[0].subject, "lost");
}

TEST_P(RulesTest, WarmupCapsRampPerDayThenStop) {
  Principal p = NewTenant("new-number", "warm");  // warmup = [2, 3]
  Working(p, "fresh");
  ASSERT_TRUE(Send(p, "fresh")->allowed);
  ASSERT_TRUE(Send(p, "fresh")->allowed);
  auto over = Send(p, "fresh");
  EXPECT_FALSE(over->allowed);
  EXPECT_EQ(over->reason, DenyReason::kWarmupLimit);
  EXPECT_EQ(over->warmup_cap, 2u);
  EXPECT_EQ(over->retry_ns, absl::ToInt64Nanoseconds(absl::Hours(24)));
  clock_.Advance(absl::Hours(24));
  // A day without heartbeats ended the lease; reconnecting keeps the warm-up day count.
  ASSERT_TRUE(SetStatus(p, "fresh", "working")->decision.allowed);
  auto partial = Send(p, "fresh", 5, true);
  ASSERT_TRUE(partial->allowed);
  EXPECT_EQ(partial->consumed, 3u) << "day 2 caps at 3; partial admits what fits";
  EXPECT_FALSE(Send(p, "fresh")->allowed);
  Reopen();  // the day's count survives a restart
  p = Who("new-number");
  EXPECT_FALSE(Send(p, "fresh")->allowed);
  clock_.Advance(absl::Hours(24));
  ASSERT_TRUE(SetStatus(p, "fresh", "working")->decision.allowed);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Send(p, "fresh")->allowed) << "ramp over: plan limit";
  EXPECT_EQ(Used(p, "messages_sent"), 25u);
}

TEST_P(RulesTest, ShadowModeDecidesRecordsAndNeverDenies) {
  Principal p = NewTenant("shadow", "shadowy");  // messages_sent 1, sessions_active 1, shadowed
  Working(p, "one");
  auto second = Wait<Admitted<SessionView>>(
      [&](auto cb) { engine_->CreateSession(p, "two", "", std::move(cb)); });
  ASSERT_TRUE(second->decision.allowed);
  auto w = SetStatus(p, "two", "working");
  EXPECT_TRUE(w->decision.allowed);
  EXPECT_EQ(w->decision.shadow_denied, std::vector<std::string>{"sessions_active"});
  ASSERT_TRUE(Send(p, "one")->allowed);
  auto d = Send(p, "one");  // over quota and over the warm-up cap of 1, both shadowed
  EXPECT_TRUE(d->allowed);
  EXPECT_EQ(d->shadow_denied, (std::vector<std::string>{"warmup", "messages_sent"}));
  EXPECT_EQ(d->overage, 1u);
  EXPECT_EQ(Used(p, "messages_sent"), 2u);
  const auto& decisions = engine_->stats().decisions;
  EXPECT_EQ(decisions.Value({"messages_sent", "shadow_denied", "messages_sent"}), 1u);
  EXPECT_EQ(decisions.Value({"messages_sent", "shadow_denied", "warmup"}), 1u);
  EXPECT_EQ(decisions.Value({"sessions_active", "shadow_denied", "sessions_active"}), 1u);
  std::string text;
  decisions.Render(text);
  EXPECT_EQ(text.find("outcome=\"denied\""), std::string::npos) << text;
}

TEST_P(RulesTest, ShadowGeneralRule) {
  rules_[Category::kGeneral].shadow = true;
  Reopen();
  Principal p = NewTenant("loud", "starter");
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(engine_->Admit(p).allowed);
  Decision d = engine_->Admit(p);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.shadow_denied, std::vector<std::string>{"general"});
  EXPECT_EQ(engine_->stats().decisions.Value({"none", "shadow_denied", "general"}), 1u);
  EXPECT_EQ(engine_->stats().decisions.Value({"none", "allowed", "none"}), 51u);
}

TEST_P(RulesTest, CustomKeyLimitsApplyAtOnceAndPersist) {
  Principal p = NewTenant("custom", "starter");
  KeyRateLimits l;
  l.general = 3;
  auto v = Wait<KeyLimitsView>(
      [&](auto cb) { engine_->SetKeyRateLimits(key_ids_["custom"], l, std::move(cb)); });
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->general, 3u);
  EXPECT_EQ(v->messages, 10u) << "trial profile for what is not custom";
  KeyRateLimits partial;
  partial.sessions = 7;
  v = Wait<KeyLimitsView>(
      [&](auto cb) { engine_->SetKeyRateLimits(key_ids_["custom"], partial, std::move(cb)); });
  EXPECT_EQ(v->general, 3u) << "a partial body keeps the other custom limits";
  EXPECT_EQ(v->sessions, 7u);
  p = Who("custom");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(engine_->Admit(p).allowed);
  EXPECT_FALSE(engine_->Admit(p).allowed);
  Reopen();
  auto again = engine_->GetKeyRateLimits(key_ids_["custom"]);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->general, 3u);
  EXPECT_EQ(again->sessions, 7u);
  EXPECT_EQ(Who("custom").limits.general, 3u);
}

TEST_P(RulesTest, QrPollingIsOnePerFiveSecondsPerSession) {
  Principal p = NewTenant("qr", "pro");
  ASSERT_TRUE(Wait<Admitted<SessionView>>([&](auto cb) {
                engine_->CreateSession(p, "scan", "", std::move(cb));
              })->decision.allowed);
  EXPECT_TRUE(engine_->PollQr(p, "scan")->decision.allowed);
  auto again = engine_->PollQr(p, "scan");
  EXPECT_FALSE(again->decision.allowed);
  EXPECT_EQ(again->decision.rule, "qr");
  clock_.Advance(absl::Seconds(10));
  EXPECT_TRUE(engine_->PollQr(p, "scan")->decision.allowed);
  EXPECT_EQ(engine_->PollQr(p, "nope").status().code(), absl::StatusCode::kNotFound);
  // Exactly one poll per 5 s: 4.9 s after an admitted poll is too early...
  clock_.Advance(absl::Milliseconds(4900));
  EXPECT_FALSE(engine_->PollQr(p, "scan")->decision.allowed);
  // ...and a client polling every 5.5 s is never refused, wherever its polls fall.
  for (int i = 0; i < 20; ++i) {
    clock_.Advance(absl::Milliseconds(i == 0 ? 600 : 5500));
    auto poll = engine_->PollQr(p, "scan");
    ASSERT_TRUE(poll.ok());
    EXPECT_TRUE(poll->decision.allowed) << "poll " << i << " refused";
  }
}

TEST_P(RulesTest, SessionCreationRuleIsPerKeyPerHour) {
  Principal p = NewTenant("maker", "starter");  // trial: sessions 2/hour
  for (const char* id : {"x1", "x2"}) {
    ASSERT_TRUE(Wait<Admitted<SessionView>>([&](auto cb) {
                  engine_->CreateSession(p, id, "", std::move(cb));
                })->decision.allowed);
  }
  auto third = Wait<Admitted<SessionView>>(
      [&](auto cb) { engine_->CreateSession(p, "x3", "", std::move(cb)); });
  EXPECT_FALSE(third->decision.allowed);
  EXPECT_EQ(third->decision.rule, "sessions");
  EXPECT_EQ(engine_->ListSessions(p)->size(), 2u);
}

TEST_P(RulesTest, GroupsAndSubscribersAreConcurrentLimits) {
  Principal p = NewTenant("groups", "starter");  // groups_active 5
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Wait<Admitted<GroupView>>([&](auto cb) {
                  engine_->CreateGroup(p, "g" + std::to_string(i), "G", std::move(cb));
                })->decision.allowed);
  }
  auto sixth = Wait<Admitted<GroupView>>(
      [&](auto cb) { engine_->CreateGroup(p, "g5", "G", std::move(cb)); });
  EXPECT_FALSE(sixth->decision.allowed);
  EXPECT_EQ(sixth->decision.meter, "groups_active");
  ASSERT_TRUE(Wait<Admitted<GroupView>>([&](auto cb) {
                engine_->DeleteGroup(p, "g0", std::move(cb));
              })->decision.allowed);
  EXPECT_TRUE(Wait<Admitted<GroupView>>([&](auto cb) {
                engine_->CreateGroup(p, "g5", "G", std::move(cb));
              })->decision.allowed);
  ASSERT_TRUE(Wait<TenantView>([&](auto cb) {
                engine_->SetLimits("groups", {{"subscribers", 10}}, std::move(cb));
              }).ok());
  EXPECT_TRUE(
      Wait<Decision>([&](auto cb) { engine_->SetSubscribers(p, 10, std::move(cb)); })->allowed);
  EXPECT_FALSE(
      Wait<Decision>([&](auto cb) { engine_->SetSubscribers(p, 11, std::move(cb)); })->allowed);
  EXPECT_TRUE(
      Wait<Decision>([&](auto cb) { engine_->SetSubscribers(p, 4, std::move(cb)); })->allowed);
  Reopen();
  p = Who("groups");
  EXPECT_EQ(Used(p, "groups_active"), 5u);
  EXPECT_EQ(Used(p, "subscribers"), 4u);
  EXPECT_EQ(engine_->ListGroups(p)->size(), 5u);
}

QUOTUM_FOR_EVERY_STORE(RulesTest);

}  // namespace
}  // namespace quotum::engine
