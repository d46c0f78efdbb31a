#include "quotum/engine/commit_queue.h"

#include <pthread.h>

#include <chrono>
#include <utility>

#include "quotum/engine/errors.h"

namespace quotum::engine {

CommitQueue::CommitQueue(Store* store, Observer observer)
    : store_(store), observer_(std::move(observer)) {}

size_t CommitQueue::pending() const {
  MutexLock lock(&mu_);
  return waiting_.size();
}

CommitQueue::~CommitQueue() { Stop(); }

void CommitQueue::Start() {
  MutexLock lock(&mu_);
  if (running_) return;
  running_ = true;
  stopping_ = false;
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "quotum-writer");
    Run();
  });
}

void CommitQueue::Stop() {
  {
    MutexLock lock(&mu_);
    if (!running_) return;
    stopping_ = true;
  }
  wake_.Signal();
  writer_.join();
  MutexLock lock(&mu_);
  running_ = false;
}

bool CommitQueue::Enqueue(absl::FunctionRef<void(CommitBatch&)> fill, Done& done) {
  bool was_idle;
  {
    MutexLock lock(&mu_);
    if (!running_ || stopping_) return false;
    fill(pending_);
    was_idle = waiting_.empty();
    waiting_.push_back(std::move(done));
  }
  // The writer waits only while nothing is waiting: only the first request of
  // a batch has anyone to wake.
  if (was_idle) wake_.Signal();
  return true;
}

bool CommitQueue::CommitAlone(CommitBatch batch, Done& done) {
  {
    MutexLock lock(&mu_);
    if (!running_ || stopping_) return false;
    alone_.emplace_back(std::move(batch), std::move(done));
  }
  wake_.Signal();
  return true;
}

void CommitQueue::Run() {
  for (;;) {
    CommitBatch batch;
    std::vector<Done> done;
    std::vector<std::pair<CommitBatch, Done>> alone;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && waiting_.empty() && alone_.empty()) wake_.Wait(&mu_);
      if (waiting_.empty() && alone_.empty() && stopping_) return;
      batch = std::move(pending_);
      pending_ = CommitBatch();
      done.swap(waiting_);
      alone.swap(alone_);
    }
    if (!done.empty()) CommitGroup(std::move(batch), std::move(done));
    for (auto& [b, d] : alone) d(store_->Commit(b));
  }
}

void CommitQueue::CommitGroup(CommitBatch batch, std::vector<Done> done) {
  const auto started = std::chrono::steady_clock::now();
  absl::Status status = batch.empty() ? absl::OkStatus() : store_->Commit(batch);
  if (observer_) {
    observer_(done.size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
              status.ok());
  }
  if (!status.ok()) {
    status = Error(absl::StatusCode::kUnavailable, "store_unavailable",
                   "The store could not commit this request; nothing was recorded. Retry.");
  }
  for (auto& d : done) d(status);
  if (!status.ok()) failed_groups_.fetch_add(1, std::memory_order_release);
}

}  // namespace quotum::engine
