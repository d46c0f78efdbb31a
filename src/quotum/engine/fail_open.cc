// Scale-out, fail-open policy (EngineOptions::fail_open). While the shared
// ledger (Redis) is unavailable, a metering request is admitted unchecked:
// its charge is committed to the cold store as a FailOpenCharge before the
// answer leaves, and the facts drain's sweep later reconciles it into the
// ledger (counted once per charge id, then carried to the reports by the
// facts stream like any decision). Idempotency keys cannot be checked
// meanwhile: a retry of a fail-open request is charged again.
#include <atomic>

#include "absl/strings/str_cat.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {

bool Engine::FailsOpen(const absl::Status& s) const {
  return opts_.fail_open && s.code() == absl::StatusCode::kUnavailable;
}

Decision Engine::FailOpenDecision(const CheckProgram& p) const {
  Decision d;
  d.allowed = true;
  d.fail_open = true;
  d.requested = p.quota.quantity;
  d.consumed = p.dry_run ? 0 : p.quota.quantity;
  d.limit = p.quota.limit;
  d.period_start = p.quota.period.start;
  d.reset_at = p.quota.period.end;
  d.meter = std::string(p.quota.meter_name);
  return d;
}

FailOpenCharge Engine::FailOpenChargeOf(const CheckProgram& p, const UsageFacts& facts) {
  FailOpenCharge c;
  c.id = absl::StrCat(opts_.instance_name, "/", absl::ToUnixMicros(absl::Now()), "/",
                      fail_open_seq_.fetch_add(1, std::memory_order_relaxed));
  c.tenant_id = std::string(p.tenant_id);
  c.meter = facts.meter;
  c.channel = facts.channel;
  c.period_start = p.quota.period.start;
  c.period_end = p.quota.period.end;
  c.at = facts.at;
  c.now = facts.now;
  c.units = p.dry_run ? 0 : p.quota.quantity;
  c.api_call = p.count_api_call;
  return c;
}

void Engine::ConsumeFailOpen(std::unique_ptr<PendingConsume> c) {
  stats_.fail_open_decisions.Add({});
  FailOpenCharge charge = FailOpenChargeOf(c->program, c->facts);
  std::vector<MessageRecord> messages;
  if (!c->program.dry_run) messages = std::move(c->facts.messages);
  CommitQueue::Done done = [d = FailOpenDecision(c->program),
                            reply = std::move(c->done)](const absl::Status& s) mutable {
    if (!s.ok()) return reply(s);
    reply(std::move(d));
  };
  const bool queued = queue_.Enqueue(
      [&](CommitBatch& b) {
        b.fail_open.push_back(std::move(charge));
        // Unchecked: every unit is admitted, so every message is written.
        for (MessageRecord& m : messages) b.messages.push_back(std::move(m));
      },
      done);
  if (!queued) done(StoreUnavailable("The cold store"));
}

absl::StatusOr<Decision> Engine::AdmitFailOpen(const CheckProgram& p, const UsageFacts& facts) {
  stats_.fail_open_decisions.Add({});
  FailOpenCharge charge = FailOpenChargeOf(p, facts);
  absl::Status committed = AwaitCommit([&](CommitQueue::Done& done) {
    return queue_.Enqueue([&](CommitBatch& b) { b.fail_open.push_back(std::move(charge)); }, done);
  });
  if (!committed.ok()) return committed;
  return FailOpenDecision(p);
}

absl::StatusOr<size_t> Engine::ReconcileFailOpen() {
  absl::StatusOr<std::vector<FailOpenCharge>> pending = store_->PendingFailOpen(1000);
  if (!pending.ok()) return pending.status();
  CommitBatch reconciled;
  absl::Status stopped;
  for (const FailOpenCharge& c : *pending) {
    absl::StatusOr<bool> counted = opts_.shared_ledger->Reconcile(c);
    if (!counted.ok()) {
      stopped = counted.status();
      break;
    }
    if (*counted) reconciled.reconciled_fail_open.push_back(c.id);
  }
  const size_t n = reconciled.reconciled_fail_open.size();
  if (n > 0) {
    // Counted in Redis already: a failure here only leaves them pending, and
    // the next attempt finds their done marks and counts nothing again.
    if (absl::Status s = CommitDrained(std::move(reconciled)); !s.ok()) return s;
    stats_.fail_open_reconciled.Add({}, n);
  }
  if (!stopped.ok()) return stopped;
  return n;
}

}  // namespace quotum::engine
