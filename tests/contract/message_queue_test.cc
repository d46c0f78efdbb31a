// The message queue on every store: scheduled and held sends, released by
// MessageReleaser rounds on a fake clock (engine/message_queue.cc).
#include <string>
#include <vector>

#include "engine_fixture.h"
#include "gtest/gtest.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/message_releaser.h"

namespace quotum::engine {
namespace {

class MessageQueueTest : public EngineTest {
 protected:
  // "queued": three messages a period, held at the limit.
  std::string ExtraToml() const override {
    return R"(
[plans.queued]
display_name = "Queued"
price_cents = 100
rate_limit_profile = "standard"
[plans.queued.limits]
messages_sent = 3
sessions_active = 5
[plans.queued.on_limit]
messages_sent = "queue"
)";
  }

  // Sessions stay working across the days these tests skip.
  void Configure(EngineOptions& o) const override { o.session_lease_ttl = absl::Hours(24 * 365); }

  void SetUp() override {
    EngineTest::SetUp();
    if (HasFatalFailure()) return;
    releaser_ =
        std::make_unique<MessageReleaser>(flaky_.get(), engine_.get(), &clock_, ReleaserOptions{});
  }
  void TearDown() override {
    releaser_.reset();
    EngineTest::TearDown();
  }
  void ReopenAll() {
    releaser_.reset();
    Reopen();
    releaser_ =
        std::make_unique<MessageReleaser>(flaky_.get(), engine_.get(), &clock_, ReleaserOptions{});
  }

  Principal TenantWithSession(const std::string& id, const std::string& plan = "queued") {
    return EngineTest::TenantWithSession(id, plan);
  }

  /// Queues sends to each of `to` through s1 (scheduled for `send_at` when given).
  std::vector<MessageRecord> Queue(const Principal& who, std::vector<std::string> to,
                                   std::optional<absl::Time> send_at = std::nullopt) {
    std::vector<MessageRecord> held;
    for (std::string& r : to) {
      HeldSend send;
      send.session_id = "s1";
      send.to = std::move(r);
      send.text = "hello";
      send.send_at = send_at;
      send.reason = send_at ? "scheduled" : "quota_exceeded";
      auto m = engine_->HeldMessage(who, std::move(send));
      EXPECT_TRUE(m.ok()) << m.status();
      held.push_back(*m);
    }
    auto r = Wait<std::vector<MessageRecord>>(
        [&](auto cb) { engine_->QueueMessages(who, held, std::move(cb)); });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<MessageRecord>{};
  }

  /// Sends the "queued" plan's three messages of the period.
  void SendThePeriodsThree(const Principal& who) {
    MeterRequest send;
    send.meter = "messages_sent";
    send.quantity = 3;
    ASSERT_TRUE(Submit(who, send)->allowed);
  }

  /// Moves the clock on (the sessions' leases outlast it).
  void Advance(absl::Duration d, std::vector<std::string>) { clock_.Advance(d); }

  size_t Release() {
    auto n = releaser_->RunOnce();
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : 0;
  }

  std::string StatusOf(const Principal& who, const std::string& id) {
    auto m = engine_->FindMessage(who, id);
    return m.ok() ? m->status : std::string(MachineCode(m.status()));
  }

  absl::StatusOr<MessageRecord> Cancel(const Principal& who, const std::string& id) {
    return Wait<MessageRecord>([&](auto cb) { engine_->CancelMessage(who, id, std::move(cb)); });
  }

  std::unique_ptr<MessageReleaser> releaser_;
};

TEST_P(MessageQueueTest, AScheduledSendGoesWhenItsTimeComesAndIsChargedThen) {
  Principal who = TenantWithSession("sched");
  auto held = Queue(who, {"+15550100"}, clock_.Now() + absl::Hours(1));
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(Release(), 0u);
  EXPECT_EQ(StatusOf(who, held[0].id), "queued");
  EXPECT_EQ(Used(who, "messages_sent"), 0u);
  Advance(absl::Hours(1), {"sched"});
  EXPECT_EQ(Release(), 1u);
  auto m = engine_->FindMessage(who, held[0].id);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->status, "sent");
  EXPECT_EQ(m->send_at, held[0].send_at);
  EXPECT_TRUE(m->sent_at.has_value());
  EXPECT_EQ(Used(who, "messages_sent"), 1u);
  EXPECT_EQ(Release(), 0u);  // once
  EXPECT_EQ(Used(who, "messages_sent"), 1u);
}

TEST_P(MessageQueueTest, HeldSendsWaitForCapacityAndGoInOrder) {
  Principal who = TenantWithSession("held");
  ASSERT_NO_FATAL_FAILURE(SendThePeriodsThree(who));  // the period's three
  auto held = Queue(who, {"+1", "+2", "+3"});
  ASSERT_EQ(held.size(), 3u);
  EXPECT_EQ(Release(), 0u);
  EXPECT_EQ(StatusOf(who, held[0].id), "queued");
  // An override adds one: the first in line goes, the rest wait.
  ASSERT_TRUE(Wait<TenantView>([&](auto cb) {
                engine_->SetLimits("held", {{"messages_sent", 4}}, std::move(cb));
              }).ok());
  releaser_->Wake("held");
  EXPECT_EQ(Release(), 1u);
  EXPECT_EQ(StatusOf(who, held[0].id), "sent");
  EXPECT_EQ(StatusOf(who, held[1].id), "queued");
  EXPECT_EQ(StatusOf(who, held[2].id), "queued");
  // The period resets (2026-12-08): the other two go.
  Advance(absl::Hours(24 * 15), {"held"});
  EXPECT_EQ(Release(), 2u);
  EXPECT_EQ(StatusOf(who, held[1].id), "sent");
  EXPECT_EQ(StatusOf(who, held[2].id), "sent");
  EXPECT_EQ(Used(who, "messages_sent"), 2u);
}

TEST_P(MessageQueueTest, AnUpgradeReleasesWithinTheRecheck) {
  Principal who = TenantWithSession("upgrade");
  ASSERT_NO_FATAL_FAILURE(SendThePeriodsThree(who));
  auto held = Queue(who, {"+1"});
  EXPECT_EQ(Release(), 0u);
  ASSERT_TRUE(Wait<SubscriptionChange>([&](auto cb) {
                engine_->ChangePlan(who, "pro", std::move(cb));
              }).ok());
  EXPECT_EQ(Release(), 0u);  // the tenant waits until its recheck
  Advance(ReleaserOptions{}.recheck, {"upgrade"});
  EXPECT_EQ(Release(), 1u);
  EXPECT_EQ(StatusOf(who, held[0].id), "sent");
}

TEST_P(MessageQueueTest, ACancelledMessageNeverGoesAndASentOneCannotBeCancelled) {
  Principal who = TenantWithSession("cancel");
  Principal other = TenantWithSession("other");
  auto held = Queue(who, {"+1", "+2"}, clock_.Now() + absl::Minutes(5));
  EXPECT_EQ(MachineCode(Cancel(other, held[0].id).status()), "message_not_found");
  auto cancelled = Cancel(who, held[0].id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->status, "cancelled");
  EXPECT_EQ(MachineCode(Cancel(who, held[0].id).status()), "message_not_queued");
  EXPECT_EQ(MachineCode(Cancel(who, "msg_nope").status()), "message_not_found");
  Advance(absl::Minutes(5), {"cancel"});
  EXPECT_EQ(Release(), 1u);
  EXPECT_EQ(StatusOf(who, held[0].id), "cancelled");
  EXPECT_EQ(StatusOf(who, held[1].id), "sent");
  EXPECT_EQ(MachineCode(Cancel(who, held[1].id).status()), "message_not_queued");
  EXPECT_EQ(Used(who, "messages_sent"), 1u);
}

TEST_P(MessageQueueTest, ReleasesArePacedByTheSessionsMessagesRule) {
  rules_[ratelimit::Category::kMessages].limit = 2;  // per minute
  Reopen();
  releaser_ =
      std::make_unique<MessageReleaser>(flaky_.get(), engine_.get(), &clock_, ReleaserOptions{});
  Principal who = TenantWithSession("paced", "pro");
  auto held = Queue(who, {"+1", "+2", "+3", "+4", "+5"});
  EXPECT_EQ(Release(), 2u);
  EXPECT_EQ(Release(), 0u);
  // The other three were admitted (charged) and wait for their hand-off.
  EXPECT_EQ(StatusOf(who, held[2].id), "released");
  EXPECT_EQ(StatusOf(who, held[4].id), "released");
  EXPECT_EQ(Used(who, "messages_sent"), 5u);
  // Then never more than the rule's two a minute (the sliding window may
  // take a little over a minute to free them), until all five went.
  size_t released = 2;
  for (int second = 0; second < 600 && released < 5; second += 15) {
    Advance(absl::Seconds(15), {"paced"});
    const size_t n = Release();
    EXPECT_LE(n, 2u);
    released += n;
  }
  EXPECT_EQ(released, 5u);
  for (const MessageRecord& m : held) EXPECT_EQ(StatusOf(who, m.id), "sent");
  EXPECT_EQ(Used(who, "messages_sent"), 5u);
}

TEST_P(MessageQueueTest, AReleaseInterruptedByACrashIsFinishedOnceNotRepeated) {
  Principal who = TenantWithSession("crash", "pro");
  auto held = Queue(who, {"+1", "+2"});
  // A releaser claimed the first and died before its charge.
  ASSERT_EQ(ExecSql("UPDATE messages SET status='releasing',updated_at_ms=0 WHERE id='" +
                    held[0].id + "'"),
            absl::OkStatus());
  ReopenAll();
  EXPECT_EQ(Release(), 2u);
  EXPECT_EQ(Used(Who("crash"), "messages_sent"), 2u);
  // A release that charged, seen again as claimed (its mark lost): the same
  // idempotency key answers, nothing is charged twice.
  ASSERT_EQ(ExecSql("UPDATE messages SET status='releasing',updated_at_ms=0 WHERE id='" +
                    held[1].id + "'"),
            absl::OkStatus());
  EXPECT_EQ(Release(), 1u);
  EXPECT_EQ(StatusOf(Who("crash"), held[1].id), "sent");
  EXPECT_EQ(Used(Who("crash"), "messages_sent"), 2u);
}

TEST_P(MessageQueueTest, AMessageWhoseSessionIsGoneFailsAndAnIdleSessionWaits) {
  Principal who = TenantWithSession("gone", "pro");
  auto held = Queue(who, {"+1"});
  ASSERT_TRUE(Wait<Admitted<SessionView>>([&](auto cb) {
                engine_->UpdateSession(who, "s1", "stopped", std::move(cb));
              }).ok());
  EXPECT_EQ(Release(), 0u);
  EXPECT_EQ(StatusOf(who, held[0].id), "queued");
  ASSERT_TRUE(Wait<Admitted<SessionView>>([&](auto cb) {
                engine_->DeleteSession(who, "s1", std::move(cb));
              }).ok());
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(Release(), 0u);
  auto m = engine_->FindMessage(who, held[0].id);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->status, "failed");
  EXPECT_EQ(m->reason, "session_not_found");
  EXPECT_EQ(Used(who, "messages_sent"), 0u);
}

TEST_P(MessageQueueTest, AMessageThatCanNeverGoFailsAndHoldsUpNoOther) {
  Principal who = TenantWithSession("stuck", "pro");
  auto held = Queue(who, {"+1", "+2"});
  // Its channel left the catalog (an operator's config change).
  ASSERT_EQ(ExecSql("UPDATE messages SET channel='fax' WHERE id='" + held[0].id + "'"),
            absl::OkStatus());
  EXPECT_EQ(Release(), 1u);
  auto m = engine_->FindMessage(who, held[0].id);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->status, "failed");
  EXPECT_EQ(m->reason, "unknown_channel");
  EXPECT_EQ(StatusOf(who, held[1].id), "sent");
  EXPECT_EQ(Used(who, "messages_sent"), 1u);
}

TEST_P(MessageQueueTest, TheQueueOutlivesARestartAndListsInPages) {
  Principal who = TenantWithSession("pages", "pro");
  auto held = Queue(who, {"+1", "+2", "+3"}, clock_.Now() + absl::Minutes(1));
  ReopenAll();
  auto page = engine_->ListMessages(Who("pages"), "queued", std::nullopt, 2);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->messages.size(), 2u);
  ASSERT_TRUE(page->next.has_value());
  auto rest = engine_->ListMessages(Who("pages"), "queued", page->next, 2);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->messages.size(), 1u);
  EXPECT_FALSE(rest->next.has_value());
  std::set<std::string> ids{page->messages[0].id, page->messages[1].id, rest->messages[0].id};
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_TRUE(engine_->ListMessages(Who("pages"), "sent", std::nullopt, 10)->messages.empty());
  Advance(absl::Minutes(1), {"pages"});
  EXPECT_EQ(Release(), 3u);
  EXPECT_EQ(engine_->ListMessages(Who("pages"), "sent", std::nullopt, 10)->messages.size(), 3u);
}

QUOTUM_FOR_EVERY_STORE(MessageQueueTest);

// A provider that refuses every message, as an upstream answering 400 does.
class RefusingProvider final : public DeliveryProvider {
 public:
  std::string_view name() const override { return "http"; }
  DeliveryAnswer Deliver(const MessageRecord& m) override {
    handed.push_back(m.id);
    DeliveryAnswer a;
    a.status = 400;
    a.error = "upstream answered 400";
    return a;
  }
  std::vector<std::string> handed;
};

// [delivery] give_back = "refused" with an upstream that refuses.
class GiveBackQueueTest : public MessageQueueTest {
 protected:
  void Configure(EngineOptions& o) const override {
    MessageQueueTest::Configure(o);
    o.delivery = &provider_;
    o.delivery_policy.give_back = GiveBackPolicy::kRefused;
  }
  uint64_t StoredUnits(const std::string& tenant, absl::Time from, absl::Time to) {
    auto rows = store_->Channels(tenant, "messages_sent", from, to);
    EXPECT_TRUE(rows.ok()) << rows.status();
    uint64_t sum = 0;
    for (const auto& [channel, units] : *rows) sum += units;
    return sum;
  }
  mutable RefusingProvider provider_;
};

// A message held at the limit in one period is released (charged) in the
// next, then refused: the charge is given back in the period, hour and day it
// was made in, and the full period before keeps its three.
TEST_P(GiveBackQueueTest, AHeldMessageRefusedAfterItsReleaseGivesBackWhereItWasCharged) {
  Principal who = TenantWithSession("held-gb");
  ASSERT_NO_FATAL_FAILURE(SendThePeriodsThree(who));
  auto held = Queue(who, {"+1"});
  EXPECT_EQ(Release(), 0u);
  // The period resets on 2026-12-08; the release comes at 12:30 that day.
  Advance(absl::Hours(24 * 15) + absl::Minutes(30), {"held-gb"});
  const absl::Time released_at = clock_.Now();
  ASSERT_TRUE(releaser_->RunOnce().ok());
  auto m = engine_->FindMessage(who, held[0].id);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->status, "failed");
  EXPECT_EQ(m->reason, "upstream answered 400");
  EXPECT_EQ(m->released_at, released_at);
  EXPECT_EQ(provider_.handed, std::vector<std::string>{held[0].id});
  EXPECT_EQ(Used(Who("held-gb"), "messages_sent"), 0u);
  const absl::Time hour = T("2026-12-08T12:00:00Z");
  EXPECT_EQ(StoredUnits("held-gb", hour, hour + absl::Hours(1)), 0u);
  EXPECT_EQ(StoredUnits("held-gb", T("2026-11-23T00:00:00Z"), T("2026-11-24T00:00:00Z")), 3u);
  ReopenAll();  // the store's counter went down with it
  EXPECT_EQ(Used(Who("held-gb"), "messages_sent"), 0u);
  EXPECT_EQ(Release(), 0u);  // failed stays failed: nothing handed over or given back again
  EXPECT_EQ(provider_.handed.size(), 1u);
}

QUOTUM_FOR_EVERY_STORE(GiveBackQueueTest);

}  // namespace
}  // namespace quotum::engine
