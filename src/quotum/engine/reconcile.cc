// Reconciliation: the hot counters against the cold store's aggregates, and
// the nightly sync that writes the one into the other (SPEC §2
// "Reconciliation"; docs/reconcile.md).
#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {
namespace {
// 50 µs apart: 100 ms for a tenant's journalled decisions to reach the writer.
constexpr int kJournalWaitTries = 2000;
}  // namespace

std::vector<TenantState*> Engine::CommittedTenants() {
  std::vector<TenantState*> all;
  {
    ReaderMutexLock lock(&registry_mu_);
    all.assign(tenants_.begin(), tenants_.end());
  }
  std::vector<TenantState*> out;
  for (TenantState* t : all) {
    MutexLock lock(&t->mu);
    if (t->committed) out.push_back(t);
  }
  return out;
}

absl::Status Engine::WaitForCommits() {
  return AwaitCommit(
      [this](CommitQueue::Done& done) { return queue_.Enqueue([](CommitBatch&) {}, done); });
}

absl::Status Engine::RepairAggregates(TenantState& t, std::vector<ReconcileRow*>& rows) {
  // A group commit in flight when the counter is read may fail afterwards and
  // take its units back out of memory while the set, written after it, keeps
  // them: when a group failed meanwhile, the repair is made again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    const uint64_t failed_before = queue_.failed_groups();
    std::vector<ReconcileRow*> repairing;
    if (absl::Status s = SetAggregates(t, rows, repairing); !s.ok()) return s;
    if (queue_.failed_groups() == failed_before) {
      for (ReconcileRow* r : repairing) r->repaired = true;
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();  // left drifted: the next sync tries again
}

absl::Status Engine::SetAggregates(TenantState& t, const std::vector<ReconcileRow*>& rows,
                                   std::vector<ReconcileRow*>& repairing) {
  const Catalog& cat = *opts_.catalog;
  return AwaitCommit([&](CommitQueue::Done& done) {
    MutexLock lock(&t.mu);
    // A decision still in a journal's buffer is in the counter but in
    // neither batch below: wait until the tenant has none (or leave the
    // repair to the next sync).
    for (int tries = 0; t.journaled.load(std::memory_order_acquire) > 0; ++tries) {
      if (tries == kJournalWaitTries) return queue_.Enqueue([](CommitBatch&) {}, done);
      t.mu.Unlock();
      absl::SleepFor(absl::Microseconds(50));
      t.mu.Lock();
    }
    std::vector<CounterRow> sets;
    for (ReconcileRow* r : rows) {
      std::optional<MeterId> m = cat.FindMeter(r->meter);
      if (m && t.period.start == r->period_start) {
        sets.push_back({t.id, r->meter, r->period_start, t.used[*m]});
        repairing.push_back(r);
      }
    }
    // Under the tenant's lock, the counter holds every decision of the tenant
    // enqueued so far. Those in an earlier group commit before this one; those
    // in the group pending now (`b`), and the journals' records handed over
    // and not yet taken by the writer (`acked`), are added after the set, in
    // its transaction (the store writes sets first) or a later one, so the
    // set leaves them out; later ones follow. Records the writer is folding
    // now are in the store before the set, or, if that fold fails, are left
    // out of the set then (CommitQueue::Retain).
    return queue_.EnqueueSeeingAcked(
        [&](CommitBatch& b, CommitQueue::EachAcked acked) {
          for (CounterRow& set : sets) {
            LeaveOutUsage(b.usage, set);
            acked([&](const CommitBatch& part) { LeaveOutUsage(part.usage, set); });
            b.counter_sets.push_back(std::move(set));
          }
        },
        done);
  });
}

namespace {

// The rows of one tenant's counter meters, counters from `v`, aggregates
// from `stored` (the cold store's rows of the current period).
std::vector<ReconcileRow> RowsOf(const Catalog& cat, const UsageView& v,
                                 const std::vector<CounterRow>& stored, int flag_percent) {
  absl::flat_hash_map<std::string, uint64_t> aggregate;
  for (const CounterRow& r : stored) {
    if (r.period_start == v.tenant.period.start) aggregate[r.meter] = r.value;
  }
  std::vector<ReconcileRow> out;
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    if (cat.meters[m].kind != MeterKind::kCounter) continue;
    auto it = aggregate.find(cat.meters[m].name);
    const uint64_t agg = it == aggregate.end() ? 0 : it->second;
    if (v.used[m] == 0 && agg == 0) continue;
    out.push_back(ReconcileRow{v.tenant.id, cat.meters[m].name, v.tenant.period.start, v.used[m],
                               agg, MeasureDrift(v.used[m], agg, flag_percent), false});
  }
  return out;
}

}  // namespace

absl::StatusOr<ReconcileReport> Engine::Reconcile(bool repair) {
  const Catalog& cat = *opts_.catalog;
  ReconcileReport report;
  report.at = clock_->Now();
  report.counters_from = opts_.shared_ledger ? "redis" : "memory";
  if (absl::Status s = AdoptEveryTenant(); !s.ok()) return s;
  const std::vector<TenantState*> tenants = CommittedTenants();
  report.tenants = tenants.size();
  std::vector<UsageView> counters;
  counters.reserve(tenants.size());
  for (TenantState* t : tenants) {
    absl::StatusOr<UsageView> v = CountersOf(*t);
    if (!v.ok()) return v.status();
    if (v->from_aggregate) {
      return Error(absl::StatusCode::kUnavailable, "counters_unavailable",
                   "The counter store (Redis) is unavailable: there is nothing to reconcile "
                   "the aggregates with. Retry once it is back.");
    }
    counters.push_back(std::move(*v));
  }
  // Embedded: the usage of every decision counted above is in the store now.
  if (!opts_.shared_ledger) {
    if (absl::Status s = WaitForCommits(); !s.ok()) return s;
  }
  for (size_t i = 0; i < tenants.size(); ++i) {
    auto stored = store_->Periods(tenants[i]->id, counters[i].tenant.period.start);
    if (!stored.ok()) return stored.status();
    std::vector<ReconcileRow> rows =
        RowsOf(cat, counters[i], *stored, opts_.reconcile_flag_percent);
    std::vector<ReconcileRow*> drifted;
    for (ReconcileRow& r : rows) {
      if (r.drift.units != 0) drifted.push_back(&r);
    }
    if (repair && !opts_.shared_ledger && !drifted.empty()) {
      if (absl::Status s = RepairAggregates(*tenants[i], drifted); !s.ok()) return s;
    }
    for (ReconcileRow& r : rows) {
      report.flagged += r.drift.flagged ? 1 : 0;
      report.repaired += r.repaired ? 1 : 0;
      report.rows.push_back(std::move(r));
    }
  }
  return report;
}

absl::StatusOr<ReconcileReport> Engine::SyncAggregates() {
  // One sync at a time (the nightly one and POST /admin/reconcile): two would
  // set the same rows in one group commit.
  MutexLock sync(&sync_mu_);
  absl::StatusOr<ReconcileReport> report = Reconcile(true);
  if (report.ok()) {
    stats_.reconcile_runs.Add({});
    stats_.reconcile_flagged.Add({}, report->flagged);
    MutexLock lock(&last_sync_mu_);
    last_sync_ = SyncSummary{report->at, report->flagged, report->repaired};
  }
  return report;
}

std::optional<SyncSummary> Engine::LastSync() const {
  MutexLock lock(&last_sync_mu_);
  return last_sync_;
}

}  // namespace quotum::engine
