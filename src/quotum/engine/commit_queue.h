#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "quotum/base/mutex.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

/// Group commit. Callers append their records to the pending batch and leave a
/// completion; one writer thread commits everything pending in one store
/// transaction and then runs the completions in enqueue order with the
/// commit's status. Nothing is acknowledged before its transaction commits.
class CommitQueue {
 public:
  using Done = absl::AnyInvocable<void(const absl::Status&)>;

  /// Called on the writer thread after each commit: requests in it, its
  /// latency in seconds, and whether it succeeded.
  using Observer = std::function<void(size_t requests, double seconds, bool ok)>;

  explicit CommitQueue(Store* store, Observer observer = {});
  ~CommitQueue();

  /// Starts the writer thread.
  void Start();
  /// Commits what is pending, then stops the writer. Later Enqueue calls fail
  /// their completion with Unavailable.
  void Stop();

  /// Appends records with `fill` (called under the queue's lock, keep it short)
  /// and takes `done`, run on the writer thread once committed or failed.
  /// Returns false, and leaves `done` untouched, when the queue is stopped.
  bool Enqueue(absl::FunctionRef<void(CommitBatch&)> fill, Done& done);
  /// As Enqueue, with a look at the acknowledged records (Handover) that the
  /// same transaction writes after the pending group's own.
  bool EnqueueSeeingAcked(
      absl::FunctionRef<void(CommitBatch& pending, const CommitBatch& acked)> fill, Done& done);

  /// Commits `batch` in a transaction of its own, after the group pending
  /// now, and runs `done` on the writer thread with the store's own status
  /// (e.g. kAlreadyExists, see CommitBatch::applied_entries). For writers
  /// whose refusal must not fail other requests. Returns false, leaving
  /// `done` untouched, when the queue is stopped.
  bool CommitAlone(CommitBatch batch, Done& done);

  /// Takes records already acknowledged, durable in a journal (journal.h),
  /// with their journal_marks: they are committed in the next group's
  /// transaction, after its own records, and are never failed: a commit that
  /// fails keeps them for the next one (and Stop leaves them to the journal's
  /// replay). Without waiters they wait up to kFoldEvery for company.
  void Handover(CommitBatch& acked) { HandOver(acked, /*counted=*/true); }
  /// As Handover, for the records a start-up read from the journals
  /// (JournalSet::HandOverReplay): they do not count toward
  /// kMaxAckedBacklog, so that journals go on acknowledging while the
  /// writer folds them (the records handed over meanwhile wait behind them,
  /// their marks being higher).
  void HandoverReplay(CommitBatch& replayed) { HandOver(replayed, /*counted=*/false); }

  /// Called on the writer thread with the marks of each committed batch that
  /// had any: how far each journal is now in the store.
  using FoldedObserver = std::function<void(const std::vector<JournalMark>&)>;
  void SetFoldedObserver(FoldedObserver observer) { folded_ = std::move(observer); }

  /// How long a read waits, at most, for a start-up's replay to be folded
  /// (100,000 rows over a million tenants took about 4 s).
  static constexpr absl::Duration kReplayFoldWait = absl::Seconds(30);
  /// How long handed-over records wait, at most, when no request waits.
  static constexpr absl::Duration kFoldEvery = absl::Milliseconds(2);
  /// Handed-over usage rows waiting past which journals stop acknowledging.
  static constexpr size_t kMaxAckedBacklog = 100'000;

  /// False while the writer cannot keep up with handovers: after a fold that
  /// failed (until one succeeds), past kMaxAckedBacklog, and once stopping.
  /// Journals then send decisions to the group commit, so that they are
  /// answered with the store's own status instead of piling up.
  bool TakesHandovers() const { return takes_handovers_.load(std::memory_order_acquire); }

  /// Returns once every record handed over before the call is committed
  /// (or after `timeout`, when folds fail; at least kReplayFoldWait while a
  /// start-up's replay is not folded yet): what a read of the store needs
  /// to see every acknowledged decision. Cheap when nothing is waiting.
  void WaitUntilFolded(absl::Duration timeout = absl::Seconds(1));

  /// Requests waiting for the next commit.
  size_t pending() const;

  /// Groups whose commit failed so far, counted once their completions have
  /// run (so a caller that sees the count unchanged across a span knows no
  /// group failed, and no undo ran, in it).
  uint64_t failed_groups() const { return failed_groups_.load(std::memory_order_acquire); }

 private:
  void Run();
  void HandOver(CommitBatch& acked, bool counted);
  /// Commits one group with the acknowledged records handed over meanwhile,
  /// and runs its completions.
  /// True when it committed.
  bool CommitGroup(CommitBatch batch, std::vector<Done> done, CommitBatch acked);
  /// Puts back acknowledged records whose commit failed, ahead of any
  /// handed over since.
  void Retain(CommitBatch& batch, const size_t (&own)[4]);

  Store* store_;
  Observer observer_;
  FoldedObserver folded_;
  std::atomic<uint64_t> failed_groups_{0};
  mutable Mutex mu_;
  /// Signalled when waiting_ stops being empty and when stopping_ is set.
  CondVar wake_;
  CommitBatch pending_ ABSL_GUARDED_BY(mu_);
  std::vector<Done> waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<CommitBatch, Done>> alone_ ABSL_GUARDED_BY(mu_);
  CommitBatch acked_ ABSL_GUARDED_BY(mu_);
  bool acked_waiting_ ABSL_GUARDED_BY(mu_) = false;  ///< acked_ holds records
  /// Usage rows in acked_ that kMaxAckedBacklog leaves out (a replay's),
  /// until the writer takes acked_.
  size_t uncounted_rows_ ABSL_GUARDED_BY(mu_) = 0;
  /// The handover that carried a start-up's replay (0: none).
  uint64_t replay_handover_ ABSL_GUARDED_BY(mu_) = 0;
  /// A fold failed while stopping: acknowledged records are no longer
  /// committed (nor marks advanced); the journals' replay brings them in.
  bool acked_abandoned_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> takes_handovers_{true};
  uint64_t handovers_ ABSL_GUARDED_BY(mu_) = 0;         ///< Handover calls so far
  uint64_t folded_handovers_ ABSL_GUARDED_BY(mu_) = 0;  ///< of which committed
  bool fold_now_ ABSL_GUARDED_BY(mu_) = false;          ///< a reader waits: no batching delay
  CondVar folded_cv_;
  /// The writer waits with no timeout (nothing to fold): a handover wakes it.
  bool writer_idle_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace quotum::engine
