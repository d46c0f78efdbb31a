// core/messaging_tier and core/recipient_window: the tier's arithmetic and
// the exact distinct counts over 24 h and 7 days.
#include "quotum/core/messaging_tier.h"

#include "gtest/gtest.h"
#include "quotum/core/recipient_window.h"
#include "quotum/engine/decision_codec.h"

namespace quotum {
namespace {

constexpr int64_t kDay = kTierWindowMs;

TEST(RecipientWindow, CountsEachRecipientOnceForADayAfterItsLastMessage) {
  RecipientWindow w;
  w.Advance(1000);
  w.Record("a");
  w.Record("b");
  w.Record("a");
  EXPECT_EQ(w.unique_24h(), 2u);
  w.Advance(1000 + kDay - 1);
  w.Record("a");  // a again: counted for another day from now
  EXPECT_EQ(w.unique_24h(), 2u);
  w.Advance(1000 + kDay);
  EXPECT_FALSE(w.Counted("b"));
  EXPECT_TRUE(w.Counted("a"));
  EXPECT_EQ(w.unique_24h(), 1u);
  EXPECT_EQ(w.unique_7d(), 2u);
  EXPECT_EQ(w.OldestCounted(), 1000 + kDay - 1);
  w.Advance(1000 + kTierEvaluationMs);
  EXPECT_FALSE(w.LastSent("b").has_value()) << "forgotten after 7 days";
  EXPECT_TRUE(w.LastSent("a").has_value());
  EXPECT_EQ(w.unique_7d(), 1u);
}

TEST(RecipientWindow, NeverMovesBackAndCountsAtALaterInstantWithoutMoving) {
  RecipientWindow w;
  w.Advance(5000);
  w.Record("a");
  EXPECT_EQ(w.Advance(10), 5000);
  w.Advance(6000);
  w.Record("b");
  EXPECT_EQ(w.CountsAt(5000 + kDay), std::make_pair(uint64_t{1}, uint64_t{2}));
  EXPECT_EQ(w.CountsAt(6000 + kTierEvaluationMs), std::make_pair(uint64_t{0}, uint64_t{0}));
  EXPECT_EQ(w.unique_24h(), 2u) << "CountsAt changed nothing";
}

TEST(RecipientWindow, RestoreUndoesARecordUnlessReplaced) {
  RecipientWindow w;
  w.Advance(100);
  w.Record("a");
  w.Advance(200);
  const auto before = w.LastSent("a");
  const uint64_t a = w.Record("a");
  const uint64_t n = w.Record("n");
  w.Restore("a", a, before);
  w.Restore("n", n, std::nullopt);
  EXPECT_EQ(w.LastSent("a"), 100);
  EXPECT_FALSE(w.LastSent("n").has_value());
  EXPECT_EQ(w.unique_24h(), 1u);
  // Recorded again in the same millisecond by a later decision: an undo of
  // the earlier record leaves it alone.
  const uint64_t first = w.Record("a");
  const uint64_t second = w.Record("a");
  w.Restore("a", first, before);
  EXPECT_EQ(w.LastSent("a"), 200);
  w.Restore("a", second, before);
  EXPECT_EQ(w.LastSent("a"), 100);
}

TEST(MessagingTier, QualifiesAtHalfAndStepsUpAfterTheDelay) {
  TierPolicy p;
  p.steps = {250, 1000};
  p.step_up_delay = absl::Hours(6);
  EXPECT_EQ(StepUpThreshold(250), 125u);
  EXPECT_EQ(StepUpThreshold(3), 2u);
  TierLevel t;
  EXPECT_FALSE(MarkQualified(p, 124, 10, t));
  EXPECT_TRUE(MarkQualified(p, 125, 10, t));
  EXPECT_EQ(t.qualified_ms, 10);
  EXPECT_FALSE(AdvanceTier(p, 125, 10 + 6 * 3'600'000 - 1, t));
  EXPECT_TRUE(AdvanceTier(p, 125, 10 + 6 * 3'600'000, t));
  EXPECT_EQ(t, (TierLevel{1, 10 + 6 * 3'600'000, 0}));
  EXPECT_EQ(TierLimitAt(p, 1), 1000u);
  // 500 already reach half of 1,000: the next step follows at once.
  TierLevel u{0, 0, 1};
  AdvanceTier(p, 500, 1 + 12 * 3'600'000, u);
  EXPECT_EQ(u.level, 2u);
  EXPECT_FALSE(TierLimitAt(p, u.level).has_value());
  EXPECT_FALSE(MarkQualified(p, 1'000'000, 5, u)) << "unlimited has no next step";
}

TEST(MessagingTier, ViewsTheNextStep) {
  TierPolicy p;
  p.steps = {250, 1000};
  TierView v = ViewTier(p, TierLevel{}, 10, 100, 0);
  EXPECT_EQ(v.limit, 250u);
  EXPECT_EQ(v.next_limit, 1000u);
  EXPECT_EQ(v.needed, 25u);
  EXPECT_FALSE(v.next_at_ms.has_value());
  v = ViewTier(p, TierLevel{1, 0, 0}, 10, 100, 0);
  EXPECT_TRUE(v.has_next);
  EXPECT_FALSE(v.next_limit.has_value()) << "the step after 1,000 is unlimited";
  v = ViewTier(p, TierLevel{0, 0, 1000}, 10, 200, 2000);
  EXPECT_EQ(v.needed, 0u);
  EXPECT_EQ(v.next_at_ms, 1000 + 6 * 3'600'000);
}

TEST(MessagingTier, AReplayAfterARestartKeepsTheTierOfItsDecision) {
  engine::Decision d;
  d.tier = engine::TierUse{1, 1000, 999};
  engine::Decision back;
  engine::DecodeDecisionExtras(engine::EncodeDecisionExtras(d), back);
  ASSERT_TRUE(back.tier.has_value());
  EXPECT_EQ(back.tier->level, 1u);
  EXPECT_EQ(back.tier->limit, 1000u);
  EXPECT_EQ(back.tier->used, 999u);
  d.tier = engine::TierUse{4, std::nullopt, 7};
  engine::DecodeDecisionExtras(engine::EncodeDecisionExtras(d), back);
  EXPECT_FALSE(back.tier->limit.has_value());
}

}  // namespace
}  // namespace quotum
