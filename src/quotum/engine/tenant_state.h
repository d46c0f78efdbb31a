#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/catalog.h"
#include "quotum/engine/decision.h"

namespace quotum::engine {

/// A remembered Idempotency-Key: the first decision, answered again on retry.
struct IdempotencyEntry {
  uint64_t fingerprint = 0;
  Decision decision;
  absl::Time created_at;
  /// False until the decision's transaction has committed.
  bool committed = false;
};

/// One tenant's hot state. Everything a decision reads or writes sits behind
/// `mu`, so two tenants never contend. Owned by the Engine; never freed while
/// the Engine lives, so pointers to it stay valid.
struct TenantState {
  explicit TenantState(std::string tenant_id) : id(std::move(tenant_id)) {}

  const std::string id;

  mutable absl::Mutex mu;
  std::string name ABSL_GUARDED_BY(mu);
  const Plan* plan ABSL_GUARDED_BY(mu) = nullptr;
  absl::Time subscription_start ABSL_GUARDED_BY(mu);
  absl::Time created_at ABSL_GUARDED_BY(mu);
  /// False until the tenant's creation has committed; hidden until then.
  bool committed ABSL_GUARDED_BY(mu) = false;
  /// The period `used` refers to; moved forward lazily on first touch.
  BillingPeriod period ABSL_GUARDED_BY(mu);
  /// Per MeterId: counter value this period, or a gauge's current value.
  std::vector<uint64_t> used ABSL_GUARDED_BY(mu);
  /// Per MeterId: admin override replacing the plan's limit.
  std::vector<std::optional<uint64_t>> overrides ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, IdempotencyEntry> idempotency ABSL_GUARDED_BY(mu);
  /// Next idempotency-map size at which expired entries are swept.
  size_t idempotency_sweep_at ABSL_GUARDED_BY(mu) = 64;
};

}  // namespace quotum::engine
