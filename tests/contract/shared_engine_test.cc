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

INSTANTIATE_TEST_SUITE_P(Scale, SharedEngineTest, ::testing::Values("postgres"),
                         contract::StoreName);

}  // namespace
}  // namespace quotum::engine
