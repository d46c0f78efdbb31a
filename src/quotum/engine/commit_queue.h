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

  /// Commits `batch` in a transaction of its own, after the group pending
  /// now, and runs `done` on the writer thread with the store's own status
  /// (e.g. kAlreadyExists, see CommitBatch::applied_entries). For writers
  /// whose refusal must not fail other requests. Returns false, leaving
  /// `done` untouched, when the queue is stopped.
  bool CommitAlone(CommitBatch batch, Done& done);

  /// Requests waiting for the next commit.
  size_t pending() const;

  /// Groups whose commit failed so far, counted once their completions have
  /// run (so a caller that sees the count unchanged across a span knows no
  /// group failed, and no undo ran, in it).
  uint64_t failed_groups() const { return failed_groups_.load(std::memory_order_acquire); }

 private:
  void Run();
  /// Commits one group and runs its completions.
  void CommitGroup(CommitBatch batch, std::vector<Done> done);

  Store* store_;
  Observer observer_;
  std::atomic<uint64_t> failed_groups_{0};
  mutable Mutex mu_;
  /// Signalled when waiting_ stops being empty and when stopping_ is set.
  CondVar wake_;
  CommitBatch pending_ ABSL_GUARDED_BY(mu_);
  std::vector<Done> waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<CommitBatch, Done>> alone_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace quotum::engine
