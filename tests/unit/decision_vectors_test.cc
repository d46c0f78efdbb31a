// The golden decision vectors against the embedded MemoryLedger.
#include "support/decision_vectors.h"

#include <algorithm>

#include "absl/container/node_hash_map.h"
#include "gtest/gtest.h"
#include "quotum/engine/memory_ledger.h"

namespace quotum::engine {
namespace {

/// A tenant's in-memory state, playing the engine's part around the ledger:
/// it rolls the period over when a program names a new one (Engine::Touch)
/// and marks an idempotency key committed once its step is answered (the
/// group commit's completion).
class MemoryUnderTest : public testing::LedgerUnderTest {
 public:
  explicit MemoryUnderTest(const std::string& name) : tenant_("golden-" + name) {}

  absl::StatusOr<LedgerResult> Execute(const CheckProgram& p, absl::Time now) override {
    MutexLock lock(&tenant_.mu);
    if (tenant_.used.empty() || tenant_.period.start != p.quota.period.start) {
      tenant_.period = p.quota.period;
      tenant_.used.assign(16, 0);
    }
    // The engine's records of the top-ups the program names (bought before).
    Record(p.quota.topups, p.quota.meter_name);
    if (p.credits) Record(p.credits->topups, p.credits->meter_name);
    SessionState* session = p.warmup ? &sessions_[std::string(p.warmup->session_id)]
                            : p.tier ? &sessions_[std::string(p.tier->session_id)]
                                     : nullptr;
    MemoryLedger ledger(tenant_, session, {/*api_calls_meter=*/0, absl::Hours(24)});
    absl::StatusOr<LedgerResult> r = ledger.Execute(p, now);
    if (r.ok() && !p.idempotency_key.empty()) {
      auto e = tenant_.Traffic().idempotency.find(p.idempotency_key);
      if (e != tenant_.Traffic().idempotency.end()) e->second.committed = true;
    }
    return r;
  }

 private:
  void Record(const TopupGrants& grants, absl::string_view meter)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tenant_.mu) {
    for (const TopupGrant& g : grants) {
      const bool known = std::any_of(tenant_.topups.begin(), tenant_.topups.end(),
                                     [&](const TopupRecord& r) { return r.id == g.id; });
      if (!known) {
        tenant_.topups.push_back(
            {g.id, tenant_.id, std::string(meter), g.units, 0, 0, {}, g.expires_at});
      }
    }
  }

  TenantState tenant_;
  absl::node_hash_map<std::string, SessionState> sessions_;
};

TEST(DecisionVectors, MemoryLedgerMatchesEveryVector) {
  const int steps = testing::RunDecisionVectors(
      QUOTUM_GOLDEN_DIR "/decisions.json",
      [](const std::string& name) { return std::make_unique<MemoryUnderTest>(name); });
  EXPECT_GE(steps, 48);
}

}  // namespace
}  // namespace quotum::engine
