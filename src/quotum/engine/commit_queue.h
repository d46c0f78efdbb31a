#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "quotum/base/mutex.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

/// Lowers `set` (an absolute counter value, written before a batch's usage)
/// by the quantities of `usage` on its row, never below 0: the usage it
/// already counts that will be added after it.
void LeaveOutUsage(const std::vector<UsageDelta>& usage, CounterRow& set);

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

  /// `fold_time`: how long one transaction folding handed-over records
  /// should take, at most, when a backlog waits (see Handover).
  explicit CommitQueue(Store* store, Observer observer = {}, absl::Duration fold_time = kFoldTime);
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
  /// As Enqueue, with a look at the acknowledged records (Handover) not yet
  /// taken by the writer: they are written after the pending group's own,
  /// in its transaction (the first fold) or in later ones. `acked` calls its
  /// argument with each part of them, in fold order.
  using EachAcked = absl::FunctionRef<void(absl::FunctionRef<void(const CommitBatch&)>)>;
  bool EnqueueSeeingAcked(absl::FunctionRef<void(CommitBatch& pending, EachAcked acked)> fill,
                          Done& done);

  /// Commits `batch` in a transaction of its own, after the group pending
  /// now, and runs `done` on the writer thread with the store's own status
  /// (e.g. kAlreadyExists, see CommitBatch::applied_entries). For writers
  /// whose refusal must not fail other requests. Returns false, leaving
  /// `done` untouched, when the queue is stopped.
  bool CommitAlone(CommitBatch batch, Done& done);

  /// Takes records already acknowledged, durable in a journal (journal.h),
  /// with their journal_marks. They are folded in order, in the transaction
  /// of the next group (after its own records) or of their own, as many at a
  /// time as the writer expects to fold in `fold_time` (from its recent folds'
  /// cost per row; a fold at most doubles the last one), so that a request
  /// waiting for the group commit waits for the fold in flight and the one
  /// it joins, however long the backlog and however cold the store. They
  /// are never failed: a commit that fails keeps them for the next one (and
  /// Stop leaves them to the journal's replay). Without waiters they wait up
  /// to kFoldEvery for company.
  void Handover(CommitBatch& acked);
  /// Takes the records a start-up read from the journals
  /// (JournalSet::HandOverReplay): parts of about kPartRows usage rows that
  /// each carry the marks of their last records, in sequence order within
  /// each journal, folded as above. They do not count toward
  /// kMaxAckedBacklog, so that journals go on acknowledging while the writer
  /// folds them; the records handed over meanwhile are folded after them,
  /// their marks being higher.
  void HandoverReplay(std::vector<CommitBatch> parts);

  /// Called on the writer thread with the marks of each committed batch that
  /// had any: how far each journal is now in the store.
  using FoldedObserver = std::function<void(const std::vector<JournalMark>&)>;
  void SetFoldedObserver(FoldedObserver observer) { folded_ = std::move(observer); }

  /// How long a read waits, at most, for a start-up's replay to be folded
  /// (100,000 rows over a million tenants took about 4 s).
  static constexpr absl::Duration kReplayFoldWait = absl::Seconds(30);
  /// How long handed-over records wait, at most, when no request waits.
  static constexpr absl::Duration kFoldEvery = absl::Milliseconds(2);
  /// The default fold_time.
  static constexpr absl::Duration kFoldTime = absl::Milliseconds(20);
  /// The smallest part of the handed-over records a fold takes: a handover
  /// joins the last part while the two hold at most this many usage rows (a
  /// larger single handover is a part of its own), and a start-up's replay
  /// comes in parts of about this size.
  static constexpr size_t kPartRows = 16;
  /// Usage rows one fold takes at most, however cheap rows have been.
  static constexpr size_t kMaxFoldRows = 16384;
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
  /// Acknowledged records handed over, folded in order, one or more parts
  /// per transaction.
  struct AckedPart {
    CommitBatch batch;        ///< whole handovers (or part of a replay), with their marks
    uint64_t through = 0;     ///< handovers_ folded whole once this part is
    size_t counted_rows = 0;  ///< its usage rows that count toward kMaxAckedBacklog

    /// Appends `records` (and their marks), handed over after this part's
    /// own, which completes handover `last`.
    void Absorb(CommitBatch& records, uint64_t last, size_t counted);
  };
  /// Takes the parts of the next fold off acked_ (at least one, up to
  /// fold_rows_ usage rows) and merges them into one.
  AckedPart TakeFold() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Learns the cost per row from a commit of `rows` usage rows (of which
  /// `fold_rows` handed over) that took `seconds`, and sets fold_rows_ and
  /// fold_worth_ from it.
  void LearnFoldCost(size_t rows, size_t fold_rows, double seconds);

  void Run();
  /// Commits one group with the next fold of acknowledged records (either
  /// may be empty; `folds`: the fold was taken from acked_; its records and
  /// marks are moved out), and runs the group's completions. True when it
  /// committed.
  bool CommitGroup(CommitBatch batch, std::vector<Done> done, AckedPart& fold, bool folds);
  /// After `fold` committed: it no longer counts toward the backlog, and
  /// the handovers it completes are folded.
  void NoteFolded(const AckedPart& fold);
  /// Puts the records of `fold` whose commit (in `batch`, after the group's
  /// `own` records) failed back first, ahead of every other part, and
  /// leaves them out of the counter sets pending now (see the .cc).
  void Retain(CommitBatch& batch, const size_t (&own)[4], const AckedPart& fold);

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
  const absl::Duration fold_time_;
  /// Handed over and not yet taken by the writer, in fold order.
  std::deque<AckedPart> acked_ ABSL_GUARDED_BY(mu_);
  size_t acked_rows_ ABSL_GUARDED_BY(mu_) = 0;  ///< usage rows in acked_
  /// Usage rows the next fold takes at most: what fits in fold_time_, and
  /// at most twice the last fold.
  size_t fold_rows_ ABSL_GUARDED_BY(mu_) = kPartRows;
  /// Usage rows that fit in fold_time_: the writer folds at once, without
  /// waiting for company, when this many wait.
  size_t fold_worth_ ABSL_GUARDED_BY(mu_) = kPartRows;
  /// The writer's estimate of a usage row's fold cost, in seconds (0: none
  /// yet; written by the writer only).
  double row_seconds_ = 0;
  /// Usage rows toward kMaxAckedBacklog: in acked_ and in the fold being
  /// committed, until its commit succeeds.
  size_t counted_rows_ ABSL_GUARDED_BY(mu_) = 0;
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
