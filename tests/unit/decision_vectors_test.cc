// The golden decision vectors against the embedded MemoryLedger.
#include "support/decision_vectors.h"

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
    SessionState* session = p.warmup ? &sessions_[std::string(p.warmup->session_id)] : nullptr;
    MemoryLedger ledger(tenant_, session, {/*api_calls_meter=*/0, absl::Hours(24)});
    absl::StatusOr<LedgerResult> r = ledger.Execute(p, now);
    if (r.ok() && !p.idempotency_key.empty()) {
      auto e = tenant_.Traffic().idempotency.find(p.idempotency_key);
      if (e != tenant_.Traffic().idempotency.end()) e->second.committed = true;
    }
    return r;
  }

 private:
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
