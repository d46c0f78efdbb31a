// The RedisLedger against a real redis-server: the golden decision vectors,
// exactness under concurrency from two ledgers (two instances), Redis' own
// clock, script reloading, and Redis going away and coming back.
#include "quotum/store/redis/redis_ledger.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include "quotum/base/mutex.h"
#include "quotum/engine/errors.h"
#include "redis_fixture.h"
#include "support/decision_vectors.h"

namespace quotum::contract {
namespace {

using engine::CheckProgram;
using engine::LedgerResult;
using store::redis::RedisLedger;
using store::redis::RedisLedgerOptions;

using RedisLedgerTest = RedisLedgerSuite;

/// A credits check: `per_unit` credits a message, `limit` credits a period.
engine::CreditsCheck CreditsAt(uint64_t per_unit, uint64_t limit) {
  engine::CreditsCheck c;
  c.meter = 6;
  c.meter_name = "credits";
  c.per_unit = per_unit;
  c.limit = limit;
  return c;
}

class RedisUnderTest : public testing::LedgerUnderTest {
 public:
  explicit RedisUnderTest(std::unique_ptr<RedisLedger> ledger) : ledger_(std::move(ledger)) {}
  absl::StatusOr<LedgerResult> Execute(const CheckProgram& p, absl::Time now) override {
    return Decide(*ledger_, p, now);
  }

 private:
  std::unique_ptr<RedisLedger> ledger_;
};

TEST_F(RedisLedgerTest, MatchesEveryDecisionVector) {
  const int steps =
      testing::RunDecisionVectors(QUOTUM_GOLDEN_DIR "/decisions.json", [this](const std::string&) {
        return std::make_unique<RedisUnderTest>(Ledger(/*redis_time=*/false));
      });
  EXPECT_GE(steps, 48);
}

TEST_F(RedisLedgerTest, EveryKeyOfAProgramSharesTheTenantsHashTag) {
  CheckProgram p = Charge("acme", 1, 10, absl::Now());
  p.idempotency_key = "k:{x}";
  engine::RateCheck general;
  general.subject = "key_1";
  general.rule = {ratelimit::Algorithm::kSlidingWindow, 10, 1'000'000'000};
  p.rates.push_back(general);
  const TierPolicy tiers;
  p.tier = engine::TierCheck{"s1", {"+1555"}, &tiers};
  const std::vector<std::string> keys = store::redis::DecisionKeys(p);
  // 8, the rate check's, the credits counter, the meter's holds and their
  // expiries, what is drawn of the meter's and the credits' top-ups, the
  // session's tier recipients and level
  ASSERT_EQ(keys.size(), 16u);
  EXPECT_EQ(keys[14], "{acme}:tr:s1");
  EXPECT_EQ(keys[15], "{acme}:ts:s1");
  for (const std::string& k : keys) EXPECT_EQ(k.rfind("{acme}:", 0), 0u) << k;
}

// 64 threads on two ledgers (two instances sharing one Redis) against a
// limit of 1,000: exactly 1,000 units admitted, the counter exactly 1,000.
TEST_F(RedisLedgerTest, TwoLedgersTogetherAdmitExactlyTheLimit) {
  std::unique_ptr<RedisLedger> a = Ledger(), b = Ledger();
  ASSERT_TRUE(a && b);
  std::atomic<uint64_t> admitted{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  const absl::Time now = absl::Now();
  for (int t = 0; t < 64; ++t) {
    threads.emplace_back([&, t] {
      RedisLedger& ledger = t % 2 == 0 ? *a : *b;
      for (int i = 0; i < 25; ++i) {
        auto r = Decide(ledger, Charge("race", 1, 1000, now), now);
        if (!r.ok()) ++errors;
        if (r.ok() && r->decision.allowed) admitted += r->decision.consumed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(admitted.load(), 1000u);
  auto r = Decide(*a, Charge("race", 1, 1000, now), now);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->verdicts.quota_before, 1000u);
  EXPECT_FALSE(r->decision.allowed);
}

// A late event's units go to the closed period's counter, unenforced; its
// api_call to the request's period; the live counter is left alone.
TEST_F(RedisLedgerTest, ALateEventChargesTheClosedPeriodAndTheCallTheCurrentOne) {
  std::unique_ptr<RedisLedger> ledger = Ledger();
  ASSERT_TRUE(ledger);
  const absl::Time now = absl::Now();
  CheckProgram p = Charge("late", 7, 10, now);
  const BillingPeriod closed{p.quota.period.start - absl::Hours(24 * 30), p.quota.period.start};
  p.quota.late_period = closed;
  p.quota.limit = std::nullopt;  // what CompileChecks gives a late event
  for (int i = 0; i < 2; ++i) {  // 14 units: past the live limit of 10
    auto r = Decide(*ledger, p, now);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->decision.allowed);
    EXPECT_TRUE(r->decision.late);
    EXPECT_EQ(r->decision.consumed, 7u);
    EXPECT_EQ(r->decision.period_start, closed.start);
  }
  auto old = ledger->Counters("late", closed.start, {"messages_sent", "api_calls"});
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(*old, (std::vector<uint64_t>{14, 0}));
  auto live = ledger->Counters("late", p.quota.period.start, {"messages_sent", "api_calls"});
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(*live, (std::vector<uint64_t>{0, 2}));
  auto fits = Decide(*ledger, Charge("late", 10, 10, now), now);  // the live limit is whole
  ASSERT_TRUE(fits.ok()) << fits.status();
  EXPECT_TRUE(fits->decision.allowed);
}

// A send whose messages cost 3 credits each against 10 credits: one decision
// charges both counters, all or nothing, or the whole messages that fit.
TEST_F(RedisLedgerTest, ASendChargesItsCreditsInTheSameDecision) {
  std::unique_ptr<RedisLedger> ledger = Ledger();
  ASSERT_TRUE(ledger);
  const absl::Time now = absl::Now();
  auto send = [&](uint64_t q, bool partial) {
    CheckProgram p = Charge("cr", q, 100, now);
    p.partial = partial;
    p.credits = CreditsAt(3, 10);
    return Decide(*ledger, p, now);
  };
  auto r = send(2, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->decision.allowed);
  ASSERT_TRUE(r->decision.credits.has_value());
  EXPECT_EQ(r->decision.credits->charged, 6u);
  EXPECT_EQ(r->verdicts.credits_charged, 6u);
  r = send(2, false);  // 6 more credits: 4 are left
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->decision.allowed);
  EXPECT_EQ(r->decision.rule, "credits");
  EXPECT_EQ(r->decision.credits->remaining, 4u);
  r = send(2, true);  // one whole message fits
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->decision.allowed);
  EXPECT_EQ(r->decision.consumed, 1u);
  EXPECT_EQ(r->decision.credits->charged, 3u);
  EXPECT_EQ(r->decision.credits->remaining, 1u);
  const BillingPeriod period = Charge("cr", 1, 1, now).quota.period;
  auto counters = ledger->Counters("cr", period.start, {"messages_sent", "credits"});
  ASSERT_TRUE(counters.ok()) << counters.status();
  EXPECT_EQ(*counters, (std::vector<uint64_t>{3, 9}));
}

// A failed message's charge given back: units and credits taken out once
// per message id, never below 0, and nothing without the tenant's baseline.
TEST_F(RedisLedgerTest, AGiveBackTakesUnitsOutOncePerMessageAndNeverBelowZero) {
  std::unique_ptr<RedisLedger> ledger = Ledger();
  ASSERT_TRUE(ledger);
  const absl::Time now = absl::Now();
  CheckProgram p = Charge("gb", 2, 100, now);
  p.credits = CreditsAt(3, 100);
  auto r = Decide(*ledger, p, now);
  ASSERT_TRUE(r.ok() && r->decision.allowed) << r.status();
  engine::GivenBackCharge c{"m1",
                            "gb",
                            "messages_sent",
                            "whatsapp",
                            p.quota.period.start,
                            p.quota.period.end,
                            now,
                            now,
                            1,
                            3,
                            "upstream answered 400"};
  auto counters = [&] {
    return *ledger->Counters("gb", p.quota.period.start, {"messages_sent", "credits"});
  };
  for (int i = 0; i < 2; ++i) {
    auto given = ledger->GiveBack(c);
    ASSERT_TRUE(given.ok()) << given.status();
    EXPECT_TRUE(*given);
    EXPECT_EQ(counters(), (std::vector<uint64_t>{1, 3})) << "attempt " << i;
  }
  EXPECT_EQ(*ledger->GivenBackReason("gb", "m1"), "upstream answered 400");
  EXPECT_EQ(*ledger->GivenBackReason("gb", "m2"), std::nullopt);
  c.message_id = "m2";
  c.units = 5;
  c.credits = 10;
  ASSERT_TRUE(*ledger->GiveBack(c));
  EXPECT_EQ(counters(), (std::vector<uint64_t>{0, 0}));
  c.tenant_id = "never-decided";
  auto without_baseline = ledger->GiveBack(c);
  ASSERT_TRUE(without_baseline.ok()) << without_baseline.status();
  EXPECT_FALSE(*without_baseline);
  EXPECT_EQ(*ledger->GivenBackReason("never-decided", "m2"), std::nullopt);
}

// Reservations on Redis: held units count against the limit, a release gives
// them back, and an expired hold gives its units back exactly at its expiry
// (on the clock the decisions are given here; Redis TIME in production).
TEST_F(RedisLedgerTest, HeldUnitsCountUntilReleasedOrExpired) {
  std::unique_ptr<RedisLedger> ledger = Ledger(/*redis_time=*/false);
  ASSERT_TRUE(ledger);
  const absl::Time now = absl::FromUnixMillis(absl::ToUnixMillis(absl::Now()));
  using Op = engine::HoldCheck::Op;
  auto hold = [&](Op op, const char* id, uint64_t q, absl::Duration ttl, absl::Time at) {
    CheckProgram p = Charge("hold", q, 100, now);
    p.hold = engine::HoldCheck{op, id, ttl};
    return Decide(*ledger, p, at);
  };
  auto r = hold(Op::kReserve, "r1", 100, absl::Minutes(5), now);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->decision.allowed);
  EXPECT_EQ(r->decision.consumed, 0u);
  EXPECT_EQ(r->decision.reservation->expires_at, now + absl::Minutes(5));
  EXPECT_FALSE(hold(Op::kReserve, "r2", 1, absl::Minutes(5), now)->decision.allowed);
  r = hold(Op::kRelease, "r1", 0, absl::ZeroDuration(), now);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->decision.allowed);
  EXPECT_EQ(r->decision.reservation->units, 100u);
  EXPECT_TRUE(hold(Op::kRelease, "r1", 0, absl::ZeroDuration(), now)->hold_missing);

  ASSERT_TRUE(hold(Op::kReserve, "r3", 100, absl::Seconds(1), now)->decision.allowed);
  EXPECT_FALSE(Decide(*ledger, Charge("hold", 1, 100, now), now)->decision.allowed);
  const absl::Time almost = now + absl::Milliseconds(999);
  EXPECT_FALSE(Decide(*ledger, Charge("hold", 1, 100, now), almost)->decision.allowed);
  const absl::Time expired = now + absl::Seconds(1);
  EXPECT_TRUE(Decide(*ledger, Charge("hold", 1, 100, now), expired)->decision.allowed);
  EXPECT_TRUE(hold(Op::kCommit, "r3", 1, absl::ZeroDuration(), expired)->hold_missing);

  // A commit of more than held is charged only if it fits.
  ASSERT_TRUE(hold(Op::kReserve, "r4", 50, absl::Minutes(5), expired)->decision.allowed);
  EXPECT_TRUE(hold(Op::kReserve, "r4", 1, absl::Minutes(5), expired)->hold_exists);
  EXPECT_FALSE(hold(Op::kCommit, "r4", 100, absl::ZeroDuration(), expired)->decision.allowed);
  r = hold(Op::kCommit, "r4", 99, absl::ZeroDuration(), expired);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->decision.allowed);
  EXPECT_EQ(r->decision.consumed, 99u);
  EXPECT_EQ(r->decision.remaining, 0u);
}

// Top-ups: units past the limit are drawn oldest expiry first, in the same
// call; a lapsed one's units are gone; after Redis lost them, what was drawn
// comes back from the cold store's records (RestoreTopups), never less.
TEST_F(RedisLedgerTest, TopUpsAreDrawnPastTheLimitAndRestoredAfterALoss) {
  std::unique_ptr<RedisLedger> ledger = Ledger(/*redis_time=*/false);
  ASSERT_TRUE(ledger);
  const absl::Time now = absl::FromUnixMillis(absl::ToUnixMillis(absl::Now()));
  auto charge = [&](uint64_t q, absl::Time at) {
    CheckProgram p = Charge("tops", q, 100, now);
    p.quota.topups = {{"late", 50, absl::InfiniteFuture()}, {"soon", 30, now + absl::Minutes(1)}};
    std::sort(p.quota.topups.begin(), p.quota.topups.end(),
              [](const auto& a, const auto& b) { return a.expires_at < b.expires_at; });
    return Decide(*ledger, p, at);
  };
  auto r = charge(90, now);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->decision.limit, 180u);
  EXPECT_TRUE(r->decision.allowed);
  r = charge(40, now);  // 10 under the limit, then 30 of "soon"
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->decision.allowed);
  EXPECT_EQ(r->decision.remaining, 50u);
  auto drawn = ledger->TopupsDrawn("tops", {{"messages_sent", "soon"}, {"messages_sent", "late"}});
  ASSERT_TRUE(drawn.ok()) << drawn.status();
  EXPECT_EQ(*drawn, (std::vector<uint64_t>{30, 0}));
  EXPECT_FALSE(charge(51, now)->decision.allowed);
  ASSERT_TRUE(charge(20, now)->decision.allowed);
  EXPECT_EQ(*ledger->TopupsDrawn("tops", {{"messages_sent", "late"}}), (std::vector<uint64_t>{20}));
  // Lost: the cold store says 20 of "late" were drawn; 10 more are never lost.
  ASSERT_TRUE(conn().Command({"DEL", "{tops}:tu:messages_sent"}).ok());
  engine::TopupRecord late{"late", "tops", "messages_sent", 50, 20};
  ASSERT_TRUE(ledger->RestoreTopups("tops", {late}).ok());
  late.drawn = 10;
  ASSERT_TRUE(ledger->RestoreTopups("tops", {late}).ok());
  EXPECT_EQ(*ledger->TopupsDrawn("tops", {{"messages_sent", "late"}}), (std::vector<uint64_t>{20}));
  r = charge(31, now + absl::Minutes(2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->decision.allowed);
  EXPECT_EQ(r->decision.limit, 180u);  // 150 used + the 30 "late" has left
  EXPECT_TRUE(charge(30, now + absl::Minutes(2))->decision.allowed);
}

// On Redis's own clock, a hold given a second expires after a second: its
// units come back although an older, longer hold keeps the keys alive.
TEST_F(RedisLedgerTest, AHoldExpiresOnRedisClock) {
  std::unique_ptr<RedisLedger> ledger = Ledger(/*redis_time=*/true);
  ASSERT_TRUE(ledger);
  const absl::Time now = absl::Now();
  using Op = engine::HoldCheck::Op;
  auto hold = [&](Op op, const char* id, uint64_t q, absl::Duration ttl) {
    CheckProgram p = Charge("clock", q, 100, now);
    p.hold = engine::HoldCheck{op, id, ttl};
    return Decide(*ledger, p, now);
  };
  ASSERT_TRUE(hold(Op::kReserve, "long", 1, absl::Minutes(5))->decision.allowed);
  ASSERT_TRUE(hold(Op::kRelease, "long", 0, absl::ZeroDuration())->decision.allowed);
  ASSERT_TRUE(hold(Op::kReserve, "short", 100, absl::Seconds(1))->decision.allowed);
  EXPECT_FALSE(Decide(*ledger, Charge("clock", 1, 100, now), now)->decision.allowed);
  absl::SleepFor(absl::Milliseconds(1100));
  auto r = Decide(*ledger, Charge("clock", 1, 100, now), now);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->decision.allowed);
  EXPECT_EQ(r->verdicts.held_before, 0u);
}

/// Runs ExecuteAsync and waits for its answer.
absl::StatusOr<LedgerResult> ExecuteAndWait(RedisLedger& ledger, const CheckProgram& p,
                                            absl::Time now) {
  Mutex mu;
  CondVar cv;
  std::optional<absl::StatusOr<LedgerResult>> result;
  ledger.ExecuteAsync(p, now, [&](absl::StatusOr<LedgerResult> r) {
    MutexLock lock(&mu);
    result = std::move(r);
    cv.Signal();
  });
  MutexLock lock(&mu);
  while (!result) cv.Wait(&mu);
  return std::move(*result);
}

// Asynchronous decisions are pipelined on a few connections: 2,000 in flight
// at once against a limit of 1,000 admit exactly 1,000, and each completion
// gets its own program's answer.
TEST_F(RedisLedgerTest, PipelinedDecisionsAreExactAndMatchTheirRequests) {
  std::unique_ptr<RedisLedger> ledger = Ledger();
  const absl::Time now = absl::Now();
  std::vector<CheckProgram> programs;
  for (int i = 0; i < 2000; ++i) programs.push_back(Charge("pipe", 1 + i % 2, 1500, now));
  ASSERT_TRUE(ledger->SetBaseline("pipe", programs[0].quota.period, {}).ok());
  Mutex mu;
  CondVar cv;
  int answered = 0, errors = 0, mismatched = 0;
  uint64_t admitted = 0;
  for (const CheckProgram& p : programs) {
    ledger->ExecuteAsync(p, now, [&, want = p.quota.quantity](absl::StatusOr<LedgerResult> r) {
      MutexLock lock(&mu);
      ++answered;
      if (!r.ok()) {
        ++errors;
      } else {
        if (r->decision.requested != want) ++mismatched;
        if (r->decision.allowed) admitted += r->decision.consumed;
      }
      cv.Signal();
    });
  }
  MutexLock lock(&mu);
  while (answered < 2000) cv.Wait(&mu);
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(mismatched, 0);
  EXPECT_EQ(admitted, 1500u);
}

TEST_F(RedisLedgerTest, PipelineReloadsTheScriptAndSurvivesRedisRestarting) {
  std::unique_ptr<RedisLedger> ledger = Ledger();
  const absl::Time now = absl::Now();
  ASSERT_TRUE(ledger->SetBaseline("pipe2", Charge("pipe2", 1, 10, now).quota.period, {}).ok());
  ASSERT_TRUE(ExecuteAndWait(*ledger, Charge("pipe2", 1, 10, now), now).ok());
  ASSERT_TRUE(conn().Command({"SCRIPT", "FLUSH"}).ok());
  auto r = ExecuteAndWait(*ledger, Charge("pipe2", 1, 10, now), now);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->verdicts.quota_before, 1u);
  conn_.reset();
  ASSERT_EQ(server_->Stop(), 0);
  r = ExecuteAndWait(*ledger, Charge("pipe2", 1, 10, now), now);
  EXPECT_EQ(engine::MachineCode(r.status()), "store_unavailable");
  ASSERT_TRUE(server_->Start()) << server_->error();
  r = ExecuteAndWait(*ledger, Charge("pipe2", 1, 10, now), now);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->verdicts.quota_before, 2u);
}

// Redis loses its data (restarted without AOF, flushed): the ledger decides
// nothing until it has the tenant's baseline, and the baseline only raises
// counters (what the cold store holds), never lowers them.
TEST_F(RedisLedgerTest, LostDataIsNotDecidedUntilTheBaselineIsBack) {
  std::unique_ptr<RedisLedger> ledger = Ledger();
  const absl::Time now = absl::Now();
  const CheckProgram p = Charge("lost", 3, 10, now);
  auto first = ledger->Execute(p, now);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->needs_baseline);
  EXPECT_FALSE(first->decision.allowed);
  ASSERT_TRUE(ledger->SetBaseline("lost", p.quota.period, {{"messages_sent", 4}}).ok());
  auto r = ledger->Execute(p, now);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->verdicts.quota_before, 4u);
  EXPECT_EQ(r->decision.consumed, 3u);
  // A baseline below the counter changes nothing.
  ASSERT_TRUE(ledger->SetBaseline("lost", p.quota.period, {{"messages_sent", 2}}).ok());
  EXPECT_EQ((*ledger->Counters("lost", p.quota.period.start, {"messages_sent"}))[0], 7u);
  ASSERT_TRUE(conn().Command({"FLUSHALL"}).ok());
  EXPECT_EQ(ledger->Counters("lost", p.quota.period.start, {"messages_sent"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ledger->Execute(p, now)->needs_baseline);
}

// Redis at its maxmemory refuses the script's writes (OOM): 503
// store_unavailable, changing nothing, not a quota's 429.
TEST_F(RedisLedgerTest, OutOfMemoryIsUnavailableAndChargesNothing) {
  std::unique_ptr<RedisLedger> ledger = Ledger();
  const absl::Time now = absl::Now();
  const CheckProgram p = Charge("oom", 3, 10, now);
  ASSERT_TRUE(Decide(*ledger, p, now).ok());
  ASSERT_TRUE(conn().Command({"CONFIG", "SET", "maxmemory", "1"}).ok());
  auto r = ledger->Execute(p, now);
  ASSERT_TRUE(conn().Command({"CONFIG", "SET", "maxmemory", "0"}).ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(engine::MachineCode(r.status()), "store_unavailable");
  EXPECT_EQ((*ledger->Counters("oom", p.quota.period.start, {"messages_sent"}))[0], 3u);
}

// The windows run on Redis' clock: an instance whose clock is a year off
// still shares one window with the others.
TEST_F(RedisLedgerTest, WindowsRunOnRedisClockNotTheInstances) {
  std::unique_ptr<RedisLedger> ledger = Ledger();
  const absl::Time now = absl::Now();
  CheckProgram p = Charge("clock", 1, 1000, now);
  engine::RateCheck general;
  general.subject = "key_1";
  general.rule = {ratelimit::Algorithm::kFixedWindow, 2, 3'600'000'000'000};
  p.rates.push_back(general);
  EXPECT_TRUE(Decide(*ledger, p, now)->decision.allowed);
  EXPECT_TRUE(Decide(*ledger, p, now - absl::Hours(24 * 365))->decision.allowed);
  auto third = Decide(*ledger, p, now + absl::Hours(24 * 365));
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_FALSE(third->decision.allowed);
  EXPECT_EQ(third->decision.rule, "general");
}

TEST_F(RedisLedgerTest, ReloadsTheScriptAfterRedisForgetsIt) {
  std::unique_ptr<RedisLedger> ledger = Ledger();
  const absl::Time now = absl::Now();
  ASSERT_TRUE(Decide(*ledger, Charge("reload", 1, 10, now), now).ok());
  ASSERT_TRUE(conn().Command({"SCRIPT", "FLUSH"}).ok());
  auto r = Decide(*ledger, Charge("reload", 1, 10, now), now);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->verdicts.quota_before, 1u);
}

// Redis stops: a decision is a 503 store_unavailable, nothing hangs; Redis
// comes back (AOF on): the ledger recovers by itself and nothing acknowledged
// was lost.
TEST_F(RedisLedgerTest, RedisDownIsUnavailableAndRecoveryIsAutomatic) {
  std::unique_ptr<RedisLedger> ledger = Ledger();
  const absl::Time now = absl::Now();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Decide(*ledger, Charge("down", 1, 10, now), now).ok());
  conn_.reset();
  ASSERT_EQ(server_->Stop(), 0);
  auto r = Decide(*ledger, Charge("down", 1, 10, now), now);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(engine::MachineCode(r.status()), "store_unavailable");
  ASSERT_TRUE(server_->Start()) << server_->error();
  // The first decision after the restart succeeds: pooled connections the
  // old server closed are noticed before use, not sent on.
  auto back = Decide(*ledger, Charge("down", 1, 10, now), now);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->verdicts.quota_before, 5u);
}

}  // namespace
}  // namespace quotum::contract
