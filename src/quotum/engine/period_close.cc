// Period close: the counters of each tenant's ended billing periods move into
// usage_aggregates with the plan and limits of the period, once the late-
// event grace after its end is over (store.h, PeriodClose).
#include <algorithm>

#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {
namespace {

// Closes written per commit.
constexpr size_t kClosesPerBatch = 500;

/// The plan in effect just before `end`, from the tenant's applied plan
/// changes (oldest first): the last one applied before `end` set it; with
/// none, the first one applied later replaced it; with neither, `current`.
std::string PlanBefore(const std::vector<SubscriptionChange>& changes, absl::Time end,
                       const std::string& current) {
  const SubscriptionChange* before = nullptr;
  const SubscriptionChange* after = nullptr;
  for (const SubscriptionChange& c : changes) {
    if (c.state != "applied") continue;
    if (c.effective_at < end) {
      if (!before || c.effective_at >= before->effective_at) before = &c;
    } else if (!after || c.effective_at < after->effective_at) {
      after = &c;
    }
  }
  if (before) return before->to_plan;
  if (after) return after->from_plan;
  return current;
}

}  // namespace

std::optional<PeriodClose> Engine::CloseOf(TenantState& t, absl::Time period_start, absl::Time now,
                                           const std::vector<SubscriptionChange>& changes) {
  MutexLock lock(&t.mu);
  Touch(t, now);  // the lazy rollover first: a pending downgrade applies at the boundary
  if (period_start >= t.period.start) return std::nullopt;  // still open
  const BillingPeriod period = PeriodAt(t.subscription_start, t.plan->interval, period_start);
  // Rows laid out by an earlier plan's interval end where the current period
  // starts at the latest.
  const absl::Time end = std::min(period.end, t.period.start);
  if (now < end + opts_.late_event_grace) return std::nullopt;  // late events may still come
  // A late decision still in a journal's buffer would land after the close:
  // the next sweep closes the period instead.
  if (t.journaled.load(std::memory_order_acquire) > 0) return std::nullopt;
  PeriodClose c;
  c.tenant_id = t.id;
  c.period = BillingPeriod{period_start, end, period.index};
  c.plan = PlanBefore(changes, end, t.plan->name);
  const Plan* plan = opts_.catalog->FindPlan(c.plan);
  if (!plan) plan = t.plan;
  const Catalog& cat = *opts_.catalog;
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    if (cat.meters[m].kind != MeterKind::kCounter) continue;
    if (std::optional<uint64_t> limit = LimitOf(*plan, &t.overrides, m, &cat, &t.addons)) {
      c.limits.emplace_back(cat.meters[m].name, *limit);
    }
  }
  c.closed_at = now;
  return c;
}

absl::StatusOr<size_t> Engine::ClosePeriods() {
  const absl::Time now = clock_->Now();
  // A period ends at least a day after it starts, and closes a grace later.
  auto open = store_->OpenPeriods(now - absl::Hours(24) - opts_.late_event_grace);
  if (!open.ok()) return StoreUnavailable("The open periods");
  size_t closed = 0;
  CommitBatch batch;
  auto flush = [&]() -> absl::Status {
    if (batch.period_closes.empty()) return absl::OkStatus();
    const size_t n = batch.period_closes.size();
    if (absl::Status s = CommitDrained(std::move(batch)); !s.ok()) return s;
    batch = CommitBatch{};
    closed += n;
    return absl::OkStatus();
  };
  std::string changes_of;
  absl::StatusOr<std::vector<SubscriptionChange>> changes;
  for (const auto& [tenant_id, start] : *open) {
    TenantState* t = FindTenantShared(tenant_id);
    if (!t) continue;  // not (yet) known here; its instance or the next sweep closes it
    if (changes_of != tenant_id) {
      changes = store_->SubscriptionChanges(tenant_id);
      changes_of = tenant_id;
    }
    if (!changes.ok()) return StoreUnavailable("The subscription ledger");
    if (std::optional<PeriodClose> c = CloseOf(*t, start, now, *changes)) {
      batch.period_closes.push_back(std::move(*c));
    }
    if (batch.period_closes.size() >= kClosesPerBatch) {
      if (absl::Status s = flush(); !s.ok()) return s;
    }
  }
  if (absl::Status s = flush(); !s.ok()) return s;
  return closed;
}

}  // namespace quotum::engine
