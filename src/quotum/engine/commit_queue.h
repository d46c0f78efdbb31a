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
  /// `acked` calls its argument with each chunk of them, in fold order.
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
  /// with their journal_marks. They are folded in order, in chunks of about
  /// kFoldChunkRows usage rows, each in the transaction of the next group
  /// (after its own records) or of its own, so that a request waiting for the
  /// group commit waits for one chunk at most, however long the backlog. They
  /// are never failed: a commit that fails keeps its chunk for the next one
  /// (and Stop leaves them to the journal's replay). Without waiters, the
  /// last chunk waits up to kFoldEvery for company.
  void Handover(CommitBatch& acked);
  /// Takes the records a start-up read from the journals
  /// (JournalSet::HandOverReplay): chunks that each carry the marks of their
  /// last records, in sequence order within each journal, each folded as
  /// one chunk above. They do not count toward kMaxAckedBacklog, so that
  /// journals go on acknowledging while the writer folds them; the records
  /// handed over meanwhile are folded after them, their marks being higher.
  void HandoverReplay(std::vector<CommitBatch> chunks);

  /// Called on the writer thread with the marks of each committed batch that
  /// had any: how far each journal is now in the store.
  using FoldedObserver = std::function<void(const std::vector<JournalMark>&)>;
  void SetFoldedObserver(FoldedObserver observer) { folded_ = std::move(observer); }

  /// How long a read waits, at most, for a start-up's replay to be folded
  /// (100,000 rows over a million tenants took about 4 s).
  static constexpr absl::Duration kReplayFoldWait = absl::Seconds(30);
  /// How long handed-over records wait, at most, when no request waits.
  static constexpr absl::Duration kFoldEvery = absl::Milliseconds(2);
  /// Handed-over usage rows folded in one transaction: a new handover joins
  /// the last chunk while the two hold at most this many (a single larger
  /// handover is a chunk of its own). On a cold store of a million tenants a
  /// row took 30-90 us to fold, so a chunk is tens of milliseconds at worst.
  static constexpr size_t kFoldChunkRows = 1024;
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
  /// Acknowledged records folded in one transaction.
  struct AckedChunk {
    CommitBatch batch;        ///< whole handovers (or part of a replay), with their marks
    uint64_t through = 0;     ///< handovers_ folded whole once this chunk is
    size_t counted_rows = 0;  ///< its usage rows that count toward kMaxAckedBacklog
  };

  void Run();
  /// Commits one group with the next chunk of acknowledged records (either
  /// may be empty; the chunk's records and marks are moved out), and runs
  /// the group's completions. True when it committed.
  bool CommitGroup(CommitBatch batch, std::vector<Done> done, AckedChunk& chunk);
  /// After `chunk` committed: it no longer counts toward the backlog, and
  /// the handovers it completes are folded.
  void NoteChunkFolded(const AckedChunk& chunk);
  /// Puts the records of `chunk` whose commit (in `batch`, after the
  /// group's `own` records) failed back first, ahead of every other chunk.
  void Retain(CommitBatch& batch, const size_t (&own)[4], const AckedChunk& chunk);

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
  /// Handed over and not yet taken by the writer, in fold order.
  std::deque<AckedChunk> acked_ ABSL_GUARDED_BY(mu_);
  /// Usage rows toward kMaxAckedBacklog: in acked_ and in the chunk being
  /// folded, until its commit succeeds.
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
