// Moving a subscription from one plan to another: which kind of change it is
// and what it costs in the current period. Pure.
#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/catalog.h"

namespace quotum {

enum class PlanChangeKind {
  kUpgrade,    ///< applies at once, charged pro rata for the rest of the period
  kDowngrade,  ///< waits for the period's end, charged nothing
  kSame,       ///< the plan the subscription has
};

/// "upgrade", "downgrade" or "same".
absl::string_view PlanChangeKindName(PlanChangeKind k);

/// The kind of moving from `from` to `to`: the same plan is kSame; a higher
/// price is an upgrade, a lower one a downgrade; two plans of one price count
/// as an upgrade (nothing to wait for, nothing to charge). A plan priced by
/// contract (price -1) ranks above every listed price.
PlanChangeKind KindOfChange(const Plan& from, const Plan& to);

/// What moving from `old_price_cents` to `new_price_cents` (per period)
/// costs at `now` within `period`: (new - old) x remaining / length, in
/// integer cents, the remaining time and the length counted in whole
/// seconds, rounded toward zero (a fraction of a cent is never charged, nor
/// credited). `now` outside the period counts as its start or end. A
/// contract price (-1) counts as 0.
int64_t ProrationCents(int64_t old_price_cents, int64_t new_price_cents,
                       const BillingPeriod& period, absl::Time now);

}  // namespace quotum
