#include "quotum/engine/commit_queue.h"

#include <pthread.h>

#include <algorithm>
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

void LeaveOutUsage(const std::vector<UsageDelta>& usage, CounterRow& set) {
  for (const UsageDelta& u : usage) {
    if (u.tenant_id == set.tenant_id && u.meter == set.meter &&
        u.period_start == set.period_start) {
      set.value -= std::min(set.value, u.quantity);
    }
  }
}

CommitQueue::CommitQueue(Store* store, Observer observer, absl::Duration fold_time)
    : store_(store), observer_(std::move(observer)), fold_time_(fold_time) {}

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
      for (const AckedPart& p : acked_) see(p.batch);
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
    const bool joins = !acked_.empty() && acked_.back().batch.usage.size() + rows <= kPartRows;
    if (!joins) acked_.emplace_back();
    acked_.back().Absorb(acked, ++handovers_, rows);
    counted_rows_ += rows;
    if (counted_rows_ > kMaxAckedBacklog) takes_handovers_.store(false, std::memory_order_release);
    // An idle writer waits for a handover; one gathering company need not
    // wait once a whole fold's worth waits.
    wake = (writer_idle_ && !joins) ||
           (acked_rows_ < fold_worth_ && acked_rows_ + rows >= fold_worth_);
    acked_rows_ += rows;
  }
  if (wake) wake_.Signal();
}

void CommitQueue::HandoverReplay(std::vector<CommitBatch> parts) {
  bool wake;
  {
    MutexLock lock(&mu_);
    if (acked_abandoned_ || parts.empty()) return;
    // Until its last part is folded, the replay's handover is not.
    const uint64_t before = acked_.empty() ? folded_handovers_ : acked_.back().through;
    for (CommitBatch& p : parts) {
      acked_rows_ += p.usage.size();
      acked_.push_back(AckedPart{std::move(p), before, 0});
    }
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
  bool fold_failed = false;  // the last round's fold did not commit
  for (;;) {
    CommitBatch batch;
    AckedPart fold;
    bool folds = false;  // `fold` was taken from acked_
    std::vector<Done> done;
    std::vector<std::pair<CommitBatch, Done>> alone;
    {
      MutexLock lock(&mu_);
      // A store that refuses is not asked again at once: acknowledged
      // records wait, and a read waiting for them would keep the loop busy.
      if (fold_failed && !stopping_) wake_.WaitWithTimeout(&mu_, kFoldEvery);
      while (!stopping_ && waiting_.empty() && alone_.empty()) {
        if (acked_.empty()) {
          writer_idle_ = true;
          wake_.Wait(&mu_);
          writer_idle_ = false;
        } else if (acked_rows_ >= fold_worth_ || fold_now_) {
          break;  // a whole fold's worth waits, or a read does
        } else if (wake_.WaitWithTimeout(&mu_, kFoldEvery)) {
          break;  // the records have waited long enough
        }
      }
      if (waiting_.empty() && alone_.empty() && acked_.empty() && stopping_) return;
      batch = std::move(pending_);
      pending_ = CommitBatch();
      if (!acked_.empty()) {
        fold = TakeFold();
        folds = true;
      }
      if (acked_.empty()) fold_now_ = false;
      done.swap(waiting_);
      alone.swap(alone_);
    }
    fold_failed = false;
    if (!done.empty() || folds) {
      const bool ok = CommitGroup(std::move(batch), std::move(done), fold, folds);
      if (ok && folds) NoteFolded(fold);
      fold_failed = folds && !ok;
      folded_cv_.SignalAll();
    }
    for (auto& [b, d] : alone) d(store_->Commit(b));
  }
}

void CommitQueue::AckedPart::Absorb(CommitBatch& records, uint64_t last, size_t counted) {
  MoveJournalRecords(records, batch);
  MergeMarks(records.journal_marks, batch.journal_marks);
  through = last;
  counted_rows += counted;
}

CommitQueue::AckedPart CommitQueue::TakeFold() {
  AckedPart fold = std::move(acked_.front());
  acked_.pop_front();
  size_t rows = fold.batch.usage.size();
  while (!acked_.empty() && rows + acked_.front().batch.usage.size() <= fold_rows_) {
    AckedPart& next = acked_.front();
    rows += next.batch.usage.size();
    fold.Absorb(next.batch, next.through, next.counted_rows);
    acked_.pop_front();
  }
  acked_rows_ -= std::min(acked_rows_, rows);
  return fold;
}

void CommitQueue::LearnFoldCost(size_t rows, size_t fold_rows, double seconds) {
  // A commit's fixed cost (and an fsync's) would pass for a high cost per
  // row in a commit of a few rows: those teach nothing.
  if (rows >= kPartRows) {
    // Rows of tenants whose pages are cold cost a hundred times those of
    // warm ones: a dearer fold is believed at once, a cheaper one slowly.
    const double sample = seconds / static_cast<double>(rows);
    row_seconds_ =
        row_seconds_ == 0 || sample > row_seconds_ ? sample : 0.8 * row_seconds_ + 0.2 * sample;
  }
  const double fits =
      row_seconds_ == 0 ? double{kPartRows} : absl::ToDoubleSeconds(fold_time_) / row_seconds_;
  MutexLock lock(&mu_);
  fold_worth_ = static_cast<size_t>(std::clamp(fits, double{kPartRows}, double{kMaxFoldRows}));
  // A fold at most doubles the last one, so that a run of cheap folds does
  // not send the next one over a cold stretch in a single leap.
  const size_t most = std::min(kMaxFoldRows, 2 * std::max(fold_rows, kPartRows));
  fold_rows_ = static_cast<size_t>(std::clamp(fits, 1.0, static_cast<double>(most)));
}

void CommitQueue::NoteFolded(const AckedPart& fold) {
  MutexLock lock(&mu_);
  folded_handovers_ = std::max(folded_handovers_, fold.through);
  counted_rows_ -= std::min(counted_rows_, fold.counted_rows);
  if (!stopping_ && !acked_abandoned_ && counted_rows_ <= kMaxAckedBacklog) {
    takes_handovers_.store(true, std::memory_order_release);
  }
}

void CommitQueue::Retain(CommitBatch& batch, const size_t (&own)[4], const AckedPart& fold) {
  AckedPart kept{CommitBatch(), fold.through, fold.counted_rows};
  MoveJournalRecords(batch, kept.batch, own);
  kept.batch.journal_marks = std::move(batch.journal_marks);
  MutexLock lock(&mu_);
  // The sets pending now were enqueued while the fold was in flight (the
  // writer took the group before them along with it), so they did not leave
  // it out: it was neither pending nor waiting (EnqueueSeeingAcked), and it
  // would have reached the store before them. It now comes after them, in
  // their transaction or later (or in the next start's replay): take it out
  // of them, or it would be counted twice.
  for (CounterRow& set : pending_.counter_sets) LeaveOutUsage(kept.batch.usage, set);
  takes_handovers_.store(false, std::memory_order_release);
  if (stopping_) {
    // No later mark may be committed over these: drop every acknowledged
    // record from here on and leave them all to the journals' replay.
    acked_abandoned_ = true;
    acked_.clear();
    acked_rows_ = 0;
    counted_rows_ = 0;
    return;
  }
  acked_rows_ += kept.batch.usage.size();
  acked_.push_front(std::move(kept));
}

bool CommitQueue::CommitGroup(CommitBatch batch, std::vector<Done> done, AckedPart& fold,
                              bool folds) {
  const auto started = std::chrono::steady_clock::now();
  size_t own[4];
  JournalListSizes(batch, own);
  const size_t fold_rows = fold.batch.usage.size();
  MoveJournalRecords(fold.batch, batch);
  batch.journal_marks = std::move(fold.batch.journal_marks);
  absl::Status status = batch.empty() ? absl::OkStatus() : store_->Commit(batch);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (status.ok() && folds) LearnFoldCost(batch.usage.size(), fold_rows, seconds);
  if (status.ok() && !batch.journal_marks.empty() && folded_) folded_(batch.journal_marks);
  if (!status.ok() && !batch.journal_marks.empty()) Retain(batch, own, fold);
  if (observer_) observer_(done.size(), seconds, status.ok());
  if (!status.ok()) {
    status = Error(absl::StatusCode::kUnavailable, "store_unavailable",
                   "The store could not commit this request; nothing was recorded. Retry.");
  }
  for (auto& d : done) d(status);
  if (!status.ok()) failed_groups_.fetch_add(1, std::memory_order_release);
  return status.ok();
}

}  // namespace quotum::engine
