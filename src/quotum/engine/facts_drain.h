// Scale-out: moves the facts that decisions appended to the shared ledger's
// stream (usage_facts.h) into the cold store, each entry once, on one
// background thread per instance. Every instance drains; the stream's
// consumer group gives each entry to one of them, and an entry whose
// instance died before acknowledging it is taken over after claim_after.
#pragma once

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "quotum/base/mutex.h"
#include "quotum/engine/engine_stats.h"
#include "quotum/engine/usage_facts.h"

namespace quotum::engine {

struct FactsDrainOptions {
  /// How often the tenants this instance decided for are read.
  absl::Duration tick = absl::Milliseconds(100);
  /// How often every tenant's stream is read too (entries appended through
  /// an instance that stopped), and stale entries taken over, by the one
  /// instance that holds the sweep lease (FactsDrainStore::lead_sweep).
  absl::Duration sweep_every = absl::Seconds(10);
  /// An entry delivered but unacknowledged this long is taken over.
  absl::Duration claim_after = absl::Seconds(30);
  /// Entries read per stream read.
  size_t max_entries = 1000;
};

/// How the drain reaches the cold store.
struct FactsDrainStore {
  /// Commits one batch in a transaction of its own and returns the store's
  /// status (kAlreadyExists: an entry of it was applied before).
  std::function<absl::Status(CommitBatch)> commit_alone;
  /// Every tenant the cold store knows.
  std::function<absl::StatusOr<std::vector<std::string>>()> tenant_ids;
  /// True when this instance holds the sweep's lease now (taking or renewing
  /// it): the sweep runs on one instance at a time.
  std::function<absl::StatusOr<bool>()> lead_sweep;
  /// Reconciles charges admitted while the ledger was unavailable (fail-open);
  /// run by the sweep. Returns how many; may be empty (nothing to do).
  std::function<absl::StatusOr<size_t>()> reconcile;
};

class FactsDrain {
 public:
  FactsDrain(FactsStream* stream, FactsDrainStore store, FactsDrainOptions options,
             EngineStats* stats);
  ~FactsDrain();

  /// Starts the background thread (ticks until Stop).
  void Start();
  /// Stops the thread after one last round for the tenants notified.
  void Stop();
  /// A decision for `tenant_id` appended facts: read its stream on the next tick.
  void Notify(absl::string_view tenant_id);

  /// One round on the caller's thread: entries that failed to apply before,
  /// then the notified tenants' new entries; with `sweep`, and when this
  /// instance leads the sweep, every tenant's new and stale entries too. Returns the entries
  /// applied; an error when the stream or the store failed (what was not applied is retried on the
  /// next round, or taken over by another instance).
  absl::StatusOr<size_t> RunOnce(bool sweep);

 private:
  void Loop();
  /// Applies `entries` in order, in as few transactions as runs of them in
  /// which no lease change's subject repeats (RunLength).
  absl::StatusOr<size_t> Apply(std::vector<FactsEntry> entries);
  /// How many of `entries`, from the first, change no lease subject twice.
  static size_t RunLength(const std::vector<FactsEntry>& entries);
  /// Applies `entries` in one transaction, or one by one when some were
  /// applied before; acknowledges the applied ones.
  absl::StatusOr<size_t> ApplyRun(std::vector<FactsEntry> entries);
  absl::StatusOr<size_t> ApplyOneByOne(std::vector<FactsEntry> entries);
  /// Reads and applies the new entries of `tenants`, a chunk at a time.
  absl::StatusOr<size_t> DrainNew(const std::vector<std::string>& tenants);
  /// Takes over and applies the stale entries of `tenants`.
  absl::StatusOr<size_t> DrainStale(const std::vector<std::string>& tenants);

  FactsStream* const stream_;
  const FactsDrainStore store_;
  const FactsDrainOptions opts_;
  EngineStats* const stats_;
  /// Drain thread (or RunOnce caller) only: entries read but not applied.
  std::vector<FactsEntry> unapplied_;

  Mutex mu_;
  CondVar wake_;
  absl::flat_hash_set<std::string> notified_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace quotum::engine
