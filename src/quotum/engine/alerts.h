// Usage alerts: the thresholds a decision crosses, made into stored alerts
// and their events in the commit of the decision itself (no polling), and
// the alerts a grown limit resolves. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "quotum/core/billing_period.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

/// What one charge of a counter meter was held to and moved.
struct ChargeOfMeter {
  std::string_view tenant_id;
  std::string_view meter;
  BillingPeriod period;
  uint64_t before = 0;   ///< the counter before the charge
  uint64_t charged = 0;  ///< units the charge added
  std::optional<uint64_t> limit;
  std::span<const int> thresholds;  ///< the plan's, in percent
  absl::Time at;                    ///< when it was decided
};

/// One alert per threshold the charge crossed (core/thresholds.h).
std::vector<AlertRecord> AlertsOfCharge(const ChargeOfMeter& c);

/// usage.threshold_reached for `a`, its id made from the alert's key so that
/// the event is stored once however often it is made.
EventRecord ReachedEvent(const AlertRecord& a);
/// usage.threshold_resolved for `a` (resolved_at set), likewise.
EventRecord ResolvedEvent(const AlertRecord& a);

/// Adds `alerts` and their events to `b`.
void AppendReached(const std::vector<AlertRecord>& alerts, CommitBatch& b);

/// A meter's counter and effective limit now; nullopt limit = unlimited.
struct MeterNow {
  uint64_t used = 0;
  std::optional<uint64_t> limit;
};

/// The unresolved alerts of `fired` that no longer hold against the meters
/// as `now_of` gives them (the limit grew), with resolved_at = `at`.
std::vector<AlertRecord> ResolvedAlerts(const std::vector<AlertRecord>& fired,
                                        absl::FunctionRef<MeterNow(std::string_view meter)> now_of,
                                        absl::Time at);

/// Adds `resolved` and their events to `b`.
void AppendResolved(const std::vector<AlertRecord>& resolved, CommitBatch& b);

}  // namespace quotum::engine
