// Messaging tiers on the embedded ledger over every store (SPEC §2
// "Messaging tiers"): the cap of unique recipients per rolling 24 h, the
// step up, what survives a restart, a failed commit taking its recipients
// back, and a refused send held by on_limit = "queue". (The decision itself
// is also held to tests/golden/decisions.json by both ledgers.)
#include <string>
#include <vector>

#include "engine_fixture.h"
#include "gtest/gtest.h"
#include "quotum/engine/message_releaser.h"

namespace quotum::engine {
namespace {

class MessagingTierTest : public EngineTest {
 protected:
  // "tiered": 2 unique recipients a day, then 4, then unlimited; a step up
  // takes effect an hour after qualifying. "tiered_queue" holds refused sends.
  std::string ExtraToml() const override {
    return R"(
[plans.tiered]
display_name = "Tiered"
price_cents = 100
rate_limit_profile = "standard"
[plans.tiered.limits]
messages_sent = 1000
sessions_active = 5
[plans.tiered.messaging_tiers]
steps = [2, 4]
step_up_delay_seconds = 3600

[plans.tiered_queue]
display_name = "Tiered, queued"
price_cents = 100
rate_limit_profile = "standard"
[plans.tiered_queue.limits]
messages_sent = 1000
sessions_active = 5
[plans.tiered_queue.on_limit]
messages_sent = "queue"
[plans.tiered_queue.messaging_tiers]
steps = [1]
types = ["template"]
)";
  }

  void Configure(EngineOptions& o) const override { o.session_lease_ttl = absl::Hours(24 * 365); }

  Principal TenantWithSession(const std::string& id, const std::string& plan = "tiered") {
    return EngineTest::TenantWithSession(id, plan);
  }

  /// A live send through s1 to each of `to` (one decision), as the send and
  /// bulk routes make it.
  absl::StatusOr<Decision> Send(const Principal& who, std::vector<std::string> to,
                                bool partial = false, MessageType type = MessageType::kText) {
    MeterRequest req;
    req.meter = "messages_sent";
    req.quantity = to.size();
    req.partial = partial;
    req.session_id = "s1";
    req.channel = "whatsapp";
    req.type = type;
    req.paced_later = true;
    const absl::Time now = clock_.Now();
    for (std::string& r : to) {
      MessageRecord m;
      m.id = absl::StrCat("m", ++sent_);
      m.tenant_id = who.tenant->id;
      m.channel = "whatsapp";
      m.to = std::move(r);
      m.text = "hi";
      m.status = "sent";
      m.created_at = m.updated_at = now;
      m.session_id = "s1";
      m.type = std::string(MessageTypeName(type));
      m.released_at = m.sent_at = m.due_at = now;
      req.messages.push_back(std::move(m));
    }
    return Submit(who, std::move(req));
  }

  std::optional<TierView> TierOf(const Principal& who) {
    auto s = engine_->GetSession(who, "s1");
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->tier : std::nullopt;
  }

  int sent_ = 0;
};

TEST_P(MessagingTierTest, CapsUniqueRecipientsPer24HoursAndRepeatsAreFree) {
  Principal who = TenantWithSession("cap");
  EXPECT_TRUE(Send(who, {"+1555100"})->allowed);
  EXPECT_TRUE(Send(who, {"+1555101"})->allowed);
  auto third = Send(who, {"+1555102"});
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_FALSE(third->allowed);
  EXPECT_EQ(third->reason, DenyReason::kTierLimit);
  EXPECT_EQ(third->rule, "tier");
  ASSERT_TRUE(third->tier.has_value());
  EXPECT_EQ(third->tier->limit, 2u);
  EXPECT_EQ(third->tier->used, 2u);
  EXPECT_EQ(third->retry_ns, absl::ToInt64Nanoseconds(absl::Hours(24)));
  EXPECT_TRUE(Send(who, {"+1555100"})->allowed) << "a recipient of the last 24 h is free";
  EXPECT_EQ(Used(who, "messages_sent"), 3u);
  auto view = TierOf(who);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->used_24h, 2u);
  EXPECT_EQ(view->level, 0u);
  // Two unique of a cap of 2 qualify at once (half of it): the step is an hour off.
  ASSERT_TRUE(view->next_at_ms.has_value());
  EXPECT_EQ(*view->next_at_ms, absl::ToUnixMillis(clock_.Now()) + 3'600'000);
  clock_.Advance(absl::Hours(24));
  // The first two were messaged 24 h ago: they no longer count.
  EXPECT_TRUE(Send(who, {"+1555102"})->allowed);
}

TEST_P(MessagingTierTest, StepsUpAfterTheDelayAndEndsUnlimited) {
  Principal who = TenantWithSession("steps");
  ASSERT_TRUE(Send(who, {"+1555200", "+1555201"})->allowed);
  clock_.Advance(absl::Minutes(59));
  EXPECT_EQ(Send(who, {"+1555202"})->reason, DenyReason::kTierLimit);
  clock_.Advance(absl::Minutes(1));
  auto up = Send(who, {"+1555202", "+1555203"});
  ASSERT_TRUE(up.ok());
  EXPECT_TRUE(up->allowed);
  EXPECT_EQ(up->tier->level, 1u);
  EXPECT_EQ(up->tier->limit, 4u);
  // Four unique over 7 days qualify level 1 (half of 4 is 2) at once.
  clock_.Advance(absl::Hours(1));
  auto view = TierOf(who);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->level, 2u);
  EXPECT_FALSE(view->limit.has_value());
  EXPECT_FALSE(view->has_next);
  std::vector<std::string> many;
  for (int i = 0; i < 20; ++i) many.push_back(absl::StrCat("+1555300", i));
  EXPECT_TRUE(Send(who, many)->allowed);
}

TEST_P(MessagingTierTest, APartialBulkAdmitsTheRecipientsThatFit) {
  Principal who = TenantWithSession("bulk");
  auto d = Send(who, {"+1555400", "+1555400", "+1555401", "+1555402"}, /*partial=*/true);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->allowed);
  EXPECT_EQ(d->consumed, 3u) << "a recipient listed twice counts once";
  EXPECT_EQ(Used(who, "messages_sent"), 3u);
}

TEST_P(MessagingTierTest, LevelAndRecipientsSurviveARestart) {
  Principal who = TenantWithSession("restart");
  ASSERT_TRUE(Send(who, {"+1555500", "+1555501"})->allowed);
  Reopen();
  who = Who("restart");
  EXPECT_EQ(Send(who, {"+1555502"})->reason, DenyReason::kTierLimit);
  EXPECT_TRUE(Send(who, {"+1555501"})->allowed);
  clock_.Advance(absl::Hours(1));
  Reopen();
  who = Who("restart");
  auto view = TierOf(who);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->level, 1u) << "the qualification was kept";
  EXPECT_EQ(view->used_24h, 2u);
  EXPECT_TRUE(Send(who, {"+1555502"})->allowed);
}

TEST_P(MessagingTierTest, ASessionMadeAgainUnderADeletedOnesIdStartsAfresh) {
  Principal who = TenantWithSession("again");
  ASSERT_TRUE(Send(who, {"+1555800", "+1555801"})->allowed);
  auto gone = Wait<Admitted<SessionView>>(
      [&](auto cb) { engine_->DeleteSession(who, "s1", std::move(cb)); });
  ASSERT_TRUE(gone.ok()) << gone.status();
  clock_.Advance(absl::Seconds(1));
  who = TenantWithSession("again-2");  // a second tenant keeps the first one's rows apart
  who = Who("again");
  for (auto step : {0, 1}) {
    auto r = Wait<Admitted<SessionView>>([&](auto cb) {
      if (step == 0) engine_->CreateSession(who, "s1", "+15550001", std::move(cb));
      if (step == 1) engine_->UpdateSession(who, "s1", "working", std::move(cb));
    });
    ASSERT_TRUE(r.ok() && r->decision.allowed) << r.status();
  }
  EXPECT_TRUE(Send(who, {"+1555802"})->allowed);
  Reopen();
  who = Who("again");
  auto view = TierOf(who);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->used_24h, 1u) << "the old session's recipients are not the new one's";
  EXPECT_TRUE(Send(who, {"+1555803"})->allowed);
}

TEST_P(MessagingTierTest, AFailedCommitTakesItsRecipientsBack) {
  Principal who = TenantWithSession("undo");
  flaky_->fail = true;
  EXPECT_FALSE(Send(who, {"+1555600", "+1555601"}).ok());
  flaky_->fail = false;
  auto view = TierOf(who);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->used_24h, 0u);
  EXPECT_FALSE(view->next_at_ms.has_value()) << "the qualification was taken back too";
  EXPECT_TRUE(Send(who, {"+1555602", "+1555603"})->allowed);
}

TEST_P(MessagingTierTest, OnlyTheCountedTypesCountAndARefusalCanBeQueued) {
  Principal who = TenantWithSession("queue", "tiered_queue");
  // Texts are not counted on this plan; templates are, one a day.
  EXPECT_TRUE(Send(who, {"+1555700", "+1555701"})->allowed);
  EXPECT_TRUE(Send(who, {"+1555702"}, false, MessageType::kTemplate)->allowed);
  auto refused = Send(who, {"+1555703"}, false, MessageType::kTemplate);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->reason, DenyReason::kTierLimit);
  EXPECT_TRUE(engine_->QueuesAtLimit(who, *refused));
  // Held, it is released once the first recipient leaves the window.
  HeldSend send;
  send.session_id = "s1";
  send.to = "+1555703";
  send.text = "hi";
  send.channel = "whatsapp";
  send.type = MessageType::kTemplate;
  send.reason = "tier_limit";
  auto held = engine_->HeldMessage(who, std::move(send));
  ASSERT_TRUE(held.ok()) << held.status();
  auto queued = Wait<std::vector<MessageRecord>>(
      [&](auto cb) { engine_->QueueMessages(who, {*held}, std::move(cb)); });
  ASSERT_TRUE(queued.ok()) << queued.status();
  MessageReleaser releaser(flaky_.get(), engine_.get(), &clock_, ReleaserOptions{});
  ASSERT_TRUE(releaser.RunOnce().ok());
  EXPECT_EQ(engine_->FindMessage(who, held->id)->status, "queued");
  clock_.Advance(absl::Hours(24));
  auto n = releaser.RunOnce();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(engine_->FindMessage(who, held->id)->status, "sent");
}

QUOTUM_FOR_EVERY_STORE(MessagingTierTest);

}  // namespace
}  // namespace quotum::engine
