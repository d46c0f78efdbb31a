// The engine on PostgreSQL read as scale-out reads it (keys and tenants
// through the store, which other instances change too), with a fake clock
// and commits that can be held in flight.
#include "engine_fixture.h"

namespace quotum::engine {
namespace {

class SharedEngineTest : public EngineTest {
 protected:
  bool SharedStore() const override { return true; }
};

// A downgrade that falls due applies on the first touch after the period's
// end, before its row is committed. A read of every tenant that starts
// meanwhile finds the old plan and the change still pending in PostgreSQL;
// were it applied, the period would already have moved on, and the tenant
// would stay on the old plan until the next period's end.
TEST_P(SharedEngineTest, ADueDowngradeSurvivesAReadOfTheStoreMadeBeforeItsCommit) {
  Principal p = NewTenant("due", "business");
  auto c = Wait<SubscriptionChange>([&](auto cb) { engine_->ChangePlan(p, "pro", std::move(cb)); });
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->state, "pending");
  clock_.Set(c->effective_at);
  flaky_->hold = true;
  EXPECT_EQ(engine_->CurrentUsage(p).tenant.plan, "pro");  // applied; its commit waits
  auto listed = engine_->ListTenants();
  ASSERT_TRUE(listed.ok()) << listed.status();
  flaky_->hold = false;
  ASSERT_TRUE(Consume(p, "messages_sent", 1).ok());  // committed after the change's row
  UsageView usage = engine_->CurrentUsage(p);
  EXPECT_EQ(usage.tenant.plan, "pro");
  EXPECT_FALSE(usage.pending_plan.has_value());
  // Once the change is committed, reads apply again, and find it applied.
  listed = engine_->ListTenants();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(engine_->CurrentUsage(p).tenant.plan, "pro");
}

// Whether a read predates a change made here is counted, not timed: after a
// clock stepped back, reads of the store still apply what another instance
// changed.
TEST_P(SharedEngineTest, AClockSteppedBackLeavesReadsOfTheStoreApplying) {
  Principal p = NewTenant("back", "business");
  auto c = Wait<SubscriptionChange>([&](auto cb) { engine_->ChangePlan(p, "pro", std::move(cb)); });
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(Consume(p, "messages_sent", 1).ok());  // committed after the change settled
  clock_.Set(clock_.Now() - absl::Hours(1));
  CommitBatch elsewhere;  // another instance's limit override
  elsewhere.overrides = {{"back", "messages_sent", 777}};
  ASSERT_EQ(store_->Commit(elsewhere), absl::OkStatus());
  auto listed = engine_->ListTenants();
  ASSERT_TRUE(listed.ok()) << listed.status();
  const MeterId sent = *cfg_->catalog.FindMeter("messages_sent");
  EXPECT_EQ(engine_->CurrentUsage(p).limits[sent], 777u);
}

INSTANTIATE_TEST_SUITE_P(Scale, SharedEngineTest, ::testing::Values("postgres"),
                         contract::StoreName);

}  // namespace
}  // namespace quotum::engine
