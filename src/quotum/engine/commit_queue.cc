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
  return EnqueueSeeingAcked([&](CommitBatch& pending, EachAcked) { fill(pending); }, done);
}

bool CommitQueue::EnqueueSeeingAcked(
    absl::FunctionRef<void(CommitBatch& pending, EachAcked acked)> fill, Done& done) {
  bool was_idle;
  {
    MutexLock lock(&mu_);
    if (!running_ || stopping_) return false;
    // Called by `fill`, so under mu_.
    fill(pending_, [this](absl::FunctionRef<void(const CommitBatch&)> see) {
      for (const AckedChunk& c : acked_) see(c.batch);
    });
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

void CommitQueue::Handover(CommitBatch& acked) {
  bool wake;
  {
    MutexLock lock(&mu_);
    if (acked_abandoned_) return;  // left in the journal for the next start
    const size_t rows = acked.usage.size();
    const bool joins =
        !acked_.empty() && acked_.back().batch.usage.size() + rows <= kFoldChunkRows;
    if (!joins) acked_.emplace_back();
    AckedChunk& chunk = acked_.back();
    MoveJournalRecords(acked, chunk.batch);
    MergeMarks(acked.journal_marks, chunk.batch.journal_marks);
    chunk.through = ++handovers_;
    chunk.counted_rows += rows;
    counted_rows_ += rows;
    if (counted_rows_ > kMaxAckedBacklog) takes_handovers_.store(false, std::memory_order_release);
    // An idle writer waits for a handover; a writer gathering company for
    // one chunk need not wait once the next one begins.
    wake = !joins && (writer_idle_ || acked_.size() == 2);
  }
  if (wake) wake_.Signal();
}

void CommitQueue::HandoverReplay(std::vector<CommitBatch> chunks) {
  bool wake;
  {
    MutexLock lock(&mu_);
    if (acked_abandoned_ || chunks.empty()) return;
    // Until its last chunk is folded, the replay's handover is not.
    const uint64_t before = acked_.empty() ? folded_handovers_ : acked_.back().through;
    for (CommitBatch& c : chunks) acked_.push_back(AckedChunk{std::move(c), before, 0});
    replay_handover_ = acked_.back().through = ++handovers_;
    wake = writer_idle_;
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
    AckedChunk chunk;
    bool folds = false;  // `chunk` was taken from acked_
    std::vector<Done> done;
    std::vector<std::pair<CommitBatch, Done>> alone;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && waiting_.empty() && alone_.empty()) {
        if (acked_.empty()) {
          writer_idle_ = true;
          wake_.Wait(&mu_);
          writer_idle_ = false;
        } else if (acked_.size() > 1 || fold_now_) {
          break;  // a chunk is full, or a read waits
        } else if (wake_.WaitWithTimeout(&mu_, kFoldEvery)) {
          break;  // the chunk has waited long enough
        }
      }
      if (waiting_.empty() && alone_.empty() && acked_.empty() && stopping_) return;
      batch = std::move(pending_);
      pending_ = CommitBatch();
      if (!acked_.empty()) {
        chunk = std::move(acked_.front());
        acked_.pop_front();
        folds = true;
      }
      if (acked_.empty()) fold_now_ = false;
      done.swap(waiting_);
      alone.swap(alone_);
    }
    if (!done.empty() || folds) {
      if (CommitGroup(std::move(batch), std::move(done), chunk) && folds) {
        NoteChunkFolded(chunk);
      }
      folded_cv_.SignalAll();
    }
    for (auto& [b, d] : alone) d(store_->Commit(b));
  }
}

void CommitQueue::NoteChunkFolded(const AckedChunk& chunk) {
  MutexLock lock(&mu_);
  folded_handovers_ = std::max(folded_handovers_, chunk.through);
  counted_rows_ -= std::min(counted_rows_, chunk.counted_rows);
  if (!stopping_ && !acked_abandoned_ && counted_rows_ <= kMaxAckedBacklog) {
    takes_handovers_.store(true, std::memory_order_release);
  }
}

void CommitQueue::Retain(CommitBatch& batch, const size_t (&own)[4], const AckedChunk& chunk) {
  AckedChunk kept{CommitBatch(), chunk.through, chunk.counted_rows};
  MoveJournalRecords(batch, kept.batch, own);
  kept.batch.journal_marks = std::move(batch.journal_marks);
  MutexLock lock(&mu_);
  takes_handovers_.store(false, std::memory_order_release);
  if (stopping_) {
    // No later mark may be committed over these: drop every acknowledged
    // record from here on and leave them all to the journals' replay.
    acked_abandoned_ = true;
    acked_.clear();
    counted_rows_ = 0;
    return;
  }
  acked_.push_front(std::move(kept));
}

bool CommitQueue::CommitGroup(CommitBatch batch, std::vector<Done> done, AckedChunk& chunk) {
  const auto started = std::chrono::steady_clock::now();
  size_t own[4];
  JournalListSizes(batch, own);
  MoveJournalRecords(chunk.batch, batch);
  batch.journal_marks = std::move(chunk.batch.journal_marks);
  absl::Status status = batch.empty() ? absl::OkStatus() : store_->Commit(batch);
  if (status.ok() && !batch.journal_marks.empty() && folded_) folded_(batch.journal_marks);
  if (!status.ok() && !batch.journal_marks.empty()) Retain(batch, own, chunk);
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
