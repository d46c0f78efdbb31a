#include "quotum/engine/commit_queue.h"

#include <pthread.h>

#include <chrono>
#include <utility>

#include "quotum/engine/errors.h"
#include "quotum/engine/journal_codec.h"

namespace quotum::engine {
namespace {

// Adds `from`'s marks to `to`, one per journal (the highest).
void MergeMarks(std::vector<JournalMark>& from, std::vector<JournalMark>& to) {
  for (const JournalMark& m : from) {
    auto it = std::find_if(to.begin(), to.end(),
                           [&](const JournalMark& t) { return t.journal == m.journal; });
    if (it == to.end()) {
      to.push_back(m);
    } else {
      it->seq = std::max(it->seq, m.seq);
    }
  }
  from.clear();
}

}  // namespace

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
    takes_handovers_.store(false, std::memory_order_release);
  }
  wake_.Signal();
  writer_.join();
  {
    MutexLock lock(&mu_);
    running_ = false;
  }
  folded_cv_.SignalAll();
}

bool CommitQueue::Enqueue(absl::FunctionRef<void(CommitBatch&)> fill, Done& done) {
  return EnqueueSeeingAcked([&](CommitBatch& pending, const CommitBatch&) { fill(pending); }, done);
}

bool CommitQueue::EnqueueSeeingAcked(
    absl::FunctionRef<void(CommitBatch& pending, const CommitBatch& acked)> fill, Done& done) {
  bool was_idle;
  {
    MutexLock lock(&mu_);
    if (!running_ || stopping_) return false;
    fill(pending_, acked_);
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

void CommitQueue::HandOver(CommitBatch& acked, bool counted) {
  bool wake;
  {
    MutexLock lock(&mu_);
    if (acked_abandoned_) return;  // left in the journal for the next start
    if (!counted) {
      uncounted_rows_ += acked.usage.size();
      replay_handover_ = handovers_ + 1;
    }
    MoveJournalRecords(acked, acked_);
    MergeMarks(acked.journal_marks, acked_.journal_marks);
    if (acked_.usage.size() - std::min(uncounted_rows_, acked_.usage.size()) > kMaxAckedBacklog) {
      takes_handovers_.store(false, std::memory_order_release);
    }
    ++handovers_;
    wake = !acked_waiting_ && writer_idle_;
    acked_waiting_ = true;
  }
  if (wake) wake_.Signal();
}

void CommitQueue::WaitUntilFolded(absl::Duration timeout) {
  MutexLock lock(&mu_);
  const uint64_t target = handovers_;
  if (folded_handovers_ >= target || !running_) return;
  fold_now_ = true;
  wake_.Signal();
  // A start-up's replay takes seconds to fold: a read waits for it longer.
  const absl::Time give_up =
      absl::Now() +
      (folded_handovers_ < replay_handover_ ? std::max(timeout, kReplayFoldWait) : timeout);
  while (folded_handovers_ < target && running_ && !acked_abandoned_) {
    const absl::Duration left = give_up - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    folded_cv_.WaitWithTimeout(&mu_, left);
  }
}

void CommitQueue::Run() {
  for (;;) {
    CommitBatch batch;
    CommitBatch acked;
    uint64_t taking = 0;  // handovers up to here are in `acked`
    std::vector<Done> done;
    std::vector<std::pair<CommitBatch, Done>> alone;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && waiting_.empty() && alone_.empty()) {
        if (!acked_waiting_) {
          writer_idle_ = true;
          wake_.Wait(&mu_);
          writer_idle_ = false;
        } else if (wake_.WaitWithTimeout(&mu_, kFoldEvery) || fold_now_) {
          break;  // handed-over records have waited long enough, or a read waits
        }
      }
      fold_now_ = false;
      if (waiting_.empty() && alone_.empty() && !acked_waiting_ && stopping_) return;
      batch = std::move(pending_);
      pending_ = CommitBatch();
      acked = std::move(acked_);
      acked_ = CommitBatch();
      acked_waiting_ = false;
      uncounted_rows_ = 0;
      taking = handovers_;
      done.swap(waiting_);
      alone.swap(alone_);
    }
    if (!done.empty() || !acked.empty()) {
      if (CommitGroup(std::move(batch), std::move(done), std::move(acked))) {
        MutexLock lock(&mu_);
        folded_handovers_ = std::max(folded_handovers_, taking);
      }
      folded_cv_.SignalAll();
    }
    for (auto& [b, d] : alone) d(store_->Commit(b));
  }
}

void CommitQueue::Retain(CommitBatch& batch, const size_t (&own)[4]) {
  CommitBatch kept;
  MoveJournalRecords(batch, kept, own);
  kept.journal_marks = std::move(batch.journal_marks);
  MutexLock lock(&mu_);
  takes_handovers_.store(false, std::memory_order_release);
  if (stopping_) {
    // No later mark may be committed over these: drop every acknowledged
    // record from here on and leave them all to the journals' replay.
    acked_abandoned_ = true;
    acked_ = CommitBatch();
    uncounted_rows_ = 0;
    acked_waiting_ = false;
    return;
  }
  MoveJournalRecords(acked_, kept);
  MergeMarks(acked_.journal_marks, kept.journal_marks);
  acked_ = std::move(kept);
  acked_waiting_ = true;
}

bool CommitQueue::CommitGroup(CommitBatch batch, std::vector<Done> done, CommitBatch acked) {
  const auto started = std::chrono::steady_clock::now();
  size_t own[4];
  JournalListSizes(batch, own);
  MoveJournalRecords(acked, batch);
  batch.journal_marks = std::move(acked.journal_marks);
  absl::Status status = batch.empty() ? absl::OkStatus() : store_->Commit(batch);
  if (status.ok() && !batch.journal_marks.empty()) {
    if (folded_) folded_(batch.journal_marks);
    MutexLock lock(&mu_);
    if (!stopping_ && acked_.usage.size() <= kMaxAckedBacklog) {
      takes_handovers_.store(true, std::memory_order_release);
    }
  }
  if (!status.ok() && !batch.journal_marks.empty()) Retain(batch, own);
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
  return status.ok();
}

}  // namespace quotum::engine
