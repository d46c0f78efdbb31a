// Scale-out's path from Redis to the cold store: decisions append their facts
// to the tenant's stream in the same script call that charges them
// (decide.lua), and the FactsDrain applies each entry to the store once —
// also when an instance applied entries and died before acknowledging them,
// when the store refuses a commit, and when Redis lost its streams.
#include "quotum/engine/facts_drain.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "quotum/store/redis/redis_facts_stream.h"
#include "quotum/store/sqlite/sqlite_store.h"
#include "quotum/testing/server_process.h"
#include "redis_fixture.h"

namespace quotum::contract {
namespace {

using engine::CommitBatch;
using engine::FactsDrain;
using engine::UsageFacts;
using store::redis::RedisFactsStream;

class FactsDrainTest : public RedisLedgerSuite {
 protected:
  void SetUp() override {
    RedisLedgerSuite::SetUp();
    dir_ = testing::MakeTempDir("quotum-facts-");
    auto store = store::sqlite::SqliteStore::Open({dir_ + "/quotum.db"});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    ledger_ = Ledger();
    ASSERT_TRUE(ledger_);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  /// A drain on its own consumer; its commits go straight to the store,
  /// refused while `refuse_commits` is set. It leads the sweep when `leads`.
  std::unique_ptr<FactsDrain> Drain(RedisFactsStream& stream, absl::Duration claim_after,
                                    bool leads = true) {
    engine::FactsDrainStore to_store{[this](CommitBatch b) {
                                       if (refuse_commits)
                                         return absl::UnavailableError("the store is down");
                                       return store_->Commit(b);
                                     },
                                     [this] { return store_->TenantIds(); },
                                     [leads]() -> absl::StatusOr<bool> { return leads; }, nullptr};
    engine::FactsDrainOptions o;
    o.claim_after = claim_after;
    return std::make_unique<FactsDrain>(&stream, std::move(to_store), o, &stats_);
  }
  std::unique_ptr<RedisFactsStream> Stream(const std::string& consumer) {
    return std::make_unique<RedisFactsStream>(Client(), consumer);
  }

  void AddTenant(const std::string& id) {
    CommitBatch b;
    b.tenants.push_back({id, id, "pro", now_ - absl::Hours(24), now_ - absl::Hours(24)});
    ASSERT_TRUE(store_->Commit(b).ok());
  }

  /// Charges `quantity` units of messages_sent (limit 10) with facts; a send
  /// carries a message.
  engine::LedgerResult Charge(const std::string& tenant, uint64_t quantity, bool partial = false,
                              bool with_message = false) {
    engine::CheckProgram p = contract::Charge(tenant, quantity, 10, now_);
    p.partial = partial;
    UsageFacts facts{"messages_sent", "whatsapp",  p.quota.period.start, now_, now_,
                     quantity,        {},          std::nullopt,         {},   {},
                     std::nullopt,    std::nullopt};
    if (with_message) {
      engine::MessageRecord m;
      m.id = absl::StrCat("msg_", ++messages_);
      m.tenant_id = tenant;
      m.channel = "whatsapp";
      m.to = "+15550001";
      m.text = "h\xC3\xA9llo \"you\"\n";
      m.status = "sent";
      m.created_at = m.updated_at = now_;
      m.session_id = "s1";
      m.send_at = now_ - absl::Minutes(1);
      m.sent_at = now_;
      facts.messages.push_back(std::move(m));
    }
    p.facts = &facts;
    auto r = Decide(*ledger_, p, now_);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : engine::LedgerResult{};
  }

  uint64_t Stored(const std::string& tenant, const std::string& meter) {
    auto rows = store_->Periods(tenant, now_ - absl::Hours(1));
    EXPECT_TRUE(rows.ok()) << rows.status();
    for (const auto& r : *rows) {
      if (r.meter == meter) return r.value;
    }
    return 0;
  }
  long long StreamLength(const std::string& tenant) {
    return conn().Command({"XLEN", store::redis::FactsStreamKey(tenant)})->view().integer();
  }

  const absl::Time now_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  std::string dir_;
  std::unique_ptr<engine::Store> store_;
  std::unique_ptr<store::redis::RedisLedger> ledger_;
  engine::EngineStats stats_;
  bool refuse_commits = false;
  int messages_ = 0;
};

TEST_F(FactsDrainTest, EveryChargeReachesTheStoreOnceWithItsMessage) {
  AddTenant("acme");
  auto stream = Stream("a");
  auto drain = Drain(*stream, absl::Seconds(30));
  EXPECT_EQ(Charge("acme", 4, false, /*with_message=*/true).decision.consumed, 4u);
  EXPECT_EQ(Charge("acme", 4).decision.consumed, 4u);
  // A message per unit charged: the first unit of this one was.
  EXPECT_EQ(Charge("acme", 5, /*partial=*/true, true).decision.consumed, 2u);
  EXPECT_FALSE(Charge("acme", 1, false, true).decision.allowed);  // the api_call only
  drain->Notify("acme");
  auto applied = drain->RunOnce(/*sweep=*/false);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 4u);
  EXPECT_EQ(Stored("acme", "messages_sent"), 10u);
  EXPECT_EQ(Stored("acme", "api_calls"), 4u);
  auto first = store_->FindMessage("acme", "msg_1");
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->text, "h\xC3\xA9llo \"you\"\n");
  EXPECT_EQ((*first)->created_at, now_);
  EXPECT_EQ((*first)->session_id, "s1");  // the queue's fields travel too
  EXPECT_EQ((*first)->send_at, now_ - absl::Minutes(1));
  EXPECT_EQ((*first)->sent_at, now_);
  EXPECT_TRUE(store_->FindMessage("acme", "msg_2")->has_value());   // its unit was charged
  EXPECT_FALSE(store_->FindMessage("acme", "msg_3")->has_value());  // refused
  EXPECT_EQ(StreamLength("acme"), 0);  // acknowledged entries are deleted
  // Nothing new: nothing applied again.
  drain->Notify("acme");
  EXPECT_EQ(*drain->RunOnce(true), 0u);
  EXPECT_EQ(Stored("acme", "messages_sent"), 10u);
}

// A failed message's charge given back (RedisLedger::GiveBack): once per
// message in Redis, and once in the store's counter and day row.
TEST_F(FactsDrainTest, AGiveBackReachesTheStoreOnceAndLowersItsRows) {
  AddTenant("refund");
  auto stream = Stream("a");
  auto drain = Drain(*stream, absl::Seconds(30));
  const engine::LedgerResult charged = Charge("refund", 4);
  ASSERT_EQ(charged.decision.consumed, 4u);
  engine::GivenBackCharge c;
  c.tenant_id = "refund";
  c.meter = "messages_sent";
  c.channel = "whatsapp";
  c.period_start = contract::Charge("refund", 1, 1, now_).quota.period.start;
  c.period_end = c.period_start + absl::Hours(24 * 30);
  c.at = c.now = now_;
  c.units = 1;
  c.reason = "upstream answered 400";
  for (const char* id : {"msg_a", "msg_a", "msg_b"}) {  // msg_a twice: given back once
    c.message_id = id;
    auto given = ledger_->GiveBack(c);
    ASSERT_TRUE(given.ok()) << given.status();
    EXPECT_TRUE(*given);
  }
  drain->Notify("refund");
  auto applied = drain->RunOnce(/*sweep=*/false);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 3u);  // the charge and two give-backs
  EXPECT_EQ(Stored("refund", "messages_sent"), 2u);
  EXPECT_EQ(Stored("refund", "api_calls"), 1u);  // a give-back counts no call
  const absl::CivilDay today = absl::ToCivilDay(now_, absl::UTCTimeZone());
  auto daily = store_->Daily("refund", today, today);
  ASSERT_TRUE(daily.ok()) << daily.status();
  uint64_t sent_today = 0;
  for (const auto& d : *daily) {
    if (d.meter == "messages_sent") sent_today = d.value;
  }
  EXPECT_EQ(sent_today, 2u);
  auto counters = ledger_->Counters("refund", c.period_start, {"messages_sent"});
  ASSERT_TRUE(counters.ok()) << counters.status();
  EXPECT_EQ(*counters, std::vector<uint64_t>{2});
}

TEST_F(FactsDrainTest, EntriesAppliedByAnInstanceThatDiedBeforeAcknowledgingAreAppliedOnce) {
  AddTenant("acme");
  Charge("acme", 3);
  Charge("acme", 2);
  // Instance A reads and applies both, then dies before acknowledging.
  auto dead = Stream("a");
  auto read = dead->ReadNew(std::vector<std::string>{"acme"}, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  CommitBatch b;
  for (const auto& e : *read) {
    engine::AppendRows(e, b);
    b.applied_entries.push_back(e.Id());
  }
  ASSERT_TRUE(store_->Commit(b).ok());
  Charge("acme", 1);  // a third entry, never delivered
  // Instance B takes the stale two over (they were applied: acknowledged
  // only) and reads the new one.
  auto stream = Stream("b");
  auto drain = Drain(*stream, absl::ZeroDuration());
  auto applied = drain->RunOnce(/*sweep=*/true);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 1u);
  EXPECT_EQ(Stored("acme", "messages_sent"), 6u);
  EXPECT_EQ(Stored("acme", "api_calls"), 3u);
  EXPECT_EQ(StreamLength("acme"), 0);
  auto pending = conn().Command({"XPENDING", store::redis::FactsStreamKey("acme"), "quotum"});
  EXPECT_EQ((**pending)[0].integer(), 0);
}

TEST_F(FactsDrainTest, ARefusedCommitKeepsTheEntriesForTheNextRound) {
  AddTenant("acme");
  auto stream = Stream("a");
  auto drain = Drain(*stream, absl::Seconds(30));
  Charge("acme", 7);
  drain->Notify("acme");
  refuse_commits = true;
  EXPECT_FALSE(drain->RunOnce(false).ok());
  EXPECT_EQ(Stored("acme", "messages_sent"), 0u);
  EXPECT_FALSE(drain->RunOnce(false).ok());
  refuse_commits = false;
  auto applied = drain->RunOnce(false);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 1u);
  EXPECT_EQ(Stored("acme", "messages_sent"), 7u);
  EXPECT_EQ(StreamLength("acme"), 0);
}

TEST_F(FactsDrainTest, TheLeadersSweepFindsTenantsNoDecisionHereNotified) {
  AddTenant("acme");
  AddTenant("other");
  Charge("acme", 1);
  Charge("other", 2);
  auto stream = Stream("a"), other_stream = Stream("b");
  auto drain = Drain(*stream, absl::Seconds(30));
  auto follower = Drain(*other_stream, absl::Seconds(30), /*leads=*/false);
  EXPECT_EQ(*drain->RunOnce(/*sweep=*/false), 0u);
  EXPECT_EQ(*follower->RunOnce(/*sweep=*/true), 0u);  // another instance leads the sweep
  EXPECT_EQ(stats_.facts_sweeps.Value({}), 0u);
  EXPECT_EQ(*drain->RunOnce(/*sweep=*/true), 2u);
  EXPECT_EQ(stats_.facts_sweeps.Value({}), 1u);
  EXPECT_EQ(Stored("acme", "messages_sent"), 1u);
  EXPECT_EQ(Stored("other", "messages_sent"), 2u);
}

TEST_F(FactsDrainTest, StreamsLostByRedisAreMadeAgain) {
  AddTenant("acme");
  auto stream = Stream("a");
  auto drain = Drain(*stream, absl::Seconds(30));
  Charge("acme", 1);
  drain->Notify("acme");
  EXPECT_EQ(*drain->RunOnce(false), 1u);
  ASSERT_TRUE(conn().Command({"FLUSHALL"}).ok());  // groups and streams gone
  Charge("acme", 2);
  drain->Notify("acme");
  auto applied = drain->RunOnce(false);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 1u);
  EXPECT_EQ(Stored("acme", "messages_sent"), 3u);
}

TEST_F(FactsDrainTest, ReplaysAndUnknownKeysAppendNothing) {
  AddTenant("acme");
  engine::CheckProgram p = contract::Charge("acme", 3, 10, now_);
  p.idempotency_key = "k1";
  p.fingerprint = 42;
  UsageFacts facts{
      "messages_sent", "",          p.quota.period.start, now_, now_, 3, {}, std::nullopt, {}, {},
      std::nullopt,    std::nullopt};
  p.facts = &facts;
  ASSERT_TRUE(Decide(*ledger_, p, now_).ok());
  auto again = Decide(*ledger_, p, now_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->replay, engine::LedgerResult::Replay::kReplayed);
  EXPECT_EQ(StreamLength("acme"), 1);
}

}  // namespace
}  // namespace quotum::contract
