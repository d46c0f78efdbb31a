// The per-I/O-thread journal (issue 15): a decision's effects are
// acknowledged once they are written to the journal of the thread that
// decided it, with no hand-off to another thread on the request's path.
//
// An I/O thread appends each request's records to its journal's buffer while
// it handles requests (Append); once the thread has handled what was ready, it
// writes the buffer with one write(2) and only then runs the requests'
// completions, which send their replies (Flush; the HTTP server posts it
// behind the handlers already queued, Redis's beforeSleep shape). Durability
// "process" only: in "fsync" mode the store's group commit decides (waiting
// for an fdatasync here, or on a thread of its own, measured slower than the
// group commit; docs/performance.md, "Journals"). The written records are then handed to the
// store's writer (CommitQueue::Handover), which folds them into the store in the background, with
// the journal's mark in the same transaction. At start-up, the records above each journal's mark
// are read (JournalSet::Open) while their files are kept; the engine adds them to the memory it
// loaded from the store and hands them to the writer (JournalSet::HandOverReplay), which folds
// them in the background in parts of about CommitQueue::kPartRows usage rows, each with the
// mark of its last record, a few parts per transaction, so that requests waiting for the group
// commit meanwhile wait for one such fold, not for the whole replay. The journals go on
// appending to the same files.
//
// A failed journal write changes nothing on disk (the file is cut back to
// its size before the write; a file that cannot be cut back stops the
// process) and hands the records to the store's writer as an ordinary group
// instead: the requests are answered with the store commit's status, and a
// commit that fails too answers 503 and undoes them. While the writer is
// failing or behind (CommitQueue::TakesHandovers), decisions skip the journal
// the same way.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "quotum/engine/commit_queue.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

struct JournalOptions {
  std::string dir;   ///< where the journal files are kept (the data dir)
  size_t count = 0;  ///< journals, one per I/O thread
  /// A journal moves to its other file past this size, once everything in
  /// that other file is in the store (so a file never grows without bound
  /// while the store keeps up).
  size_t rotate_bytes = 8 << 20;
};

/// Where a journal counts its work (each may be null).
struct JournalCounters {
  std::atomic<uint64_t>* writes_ok = nullptr;
  std::atomic<uint64_t>* writes_failed = nullptr;
  std::atomic<uint64_t>* records = nullptr;
};

inline void Count(std::atomic<uint64_t>* c, uint64_t n = 1) {
  if (c) c->fetch_add(n, std::memory_order_relaxed);
}

/// One thread's journal. Append and Flush run on that thread only; the
/// writer reports progress through NoteFolded.
class Journal {
 public:
  using Done = CommitQueue::Done;
  /// Runs a task on the owning thread after the work already queued there.
  using Post = std::function<void(std::function<void()>)>;

  /// What a journal's two files hold when it is opened.
  struct Files {
    int fds[2] = {-1, -1};          ///< opened for appending; the journal closes them
    size_t bytes[2] = {0, 0};       ///< each file's size
    uint64_t last_seq[2] = {0, 0};  ///< the highest sequence in each file (0: none)
  };

  /// Appends to `files` (to the one holding the highest sequence) from
  /// sequence `next_seq`; the store holds every record up to `folded`.
  Journal(uint32_t id, const Files& files, uint64_t next_seq, uint64_t folded, size_t rotate_bytes,
          CommitQueue* queue, JournalCounters counters = {});
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  /// The journal bound to the calling thread, or null.
  static Journal* OfThisThread();
  /// Binds this journal to the calling thread; `post` schedules its Flush.
  void BindToThisThread(Post post);
  /// Flushes what is buffered and unbinds the calling thread.
  void Unbind();

  /// Appends the records `fill` adds, which must be journalable
  /// (IsJournalable), and keeps `done` for the flush. `in_flight` (the
  /// tenant's count of records not yet handed to the writer) is raised now
  /// and lowered once the records are with the writer. Returns false, and
  /// leaves `done` untouched, when the writer has stopped.
  bool Append(std::atomic<uint16_t>& in_flight, absl::FunctionRef<void(CommitBatch&)> fill,
              Done& done);

  /// Writes the buffered records, hands them over and runs their completions.
  void Flush();

  /// The writer committed this journal's records up to `seq`.
  void NoteFolded(uint64_t seq);
  /// Empties both files when everything written is in the store.
  void TruncateIfFolded();

  uint32_t id() const { return id_; }

 private:
  /// Writes buf_ to the active file (rotating first when due); on failure
  /// the file is cut back to where it was.
  absl::Status WriteOut();
  void MaybeRotate();
  /// The records could not be journalled: the store's commit decides.
  void FallBack(const absl::Status& why);
  void ReleaseInFlight();

  const uint32_t id_;
  int fds_[2];
  size_t bytes_[2] = {0, 0};
  uint64_t last_seq_[2] = {0, 0};  ///< the highest sequence written to each file
  int active_ = 0;
  uint64_t next_seq_;
  const size_t rotate_bytes_;
  CommitQueue* queue_;
  const JournalCounters counters_;
  std::atomic<uint64_t> folded_{0};
  Post post_;
  bool flush_posted_ = false;
  std::string buf_;
  CommitBatch batch_;
  std::vector<Done> done_;
  std::vector<std::atomic<uint16_t>*> in_flight_;
};

/// The journals of one data directory.
class JournalSet {
 public:
  /// Journal ids are below this (one per I/O thread); Open refuses a file
  /// with a higher one.
  static constexpr uint32_t kMaxJournals = 4096;

  /// Locks `o.dir` against a second process, reads every record above its
  /// journal's mark in the store from the journal files there (a torn tail
  /// is cut off the file), and opens `o.count` journals (more when files of
  /// more are found) that go on appending to those files and hand over to
  /// `queue`. Commits nothing: the records read are replay(), for the caller
  /// to take into memory before HandOverReplay. Fails, and leaves the files
  /// alone, when the dir is in use or the store's marks cannot be read.
  static absl::StatusOr<std::unique_ptr<JournalSet>> Open(const JournalOptions& o, Store* store,
                                                          CommitQueue* queue,
                                                          JournalCounters counters = {});

  size_t size() const { return journals_.size(); }
  Journal* at(size_t i) { return journals_[i].get(); }
  /// True when `j` is one of this set's (a thread bound to another engine's
  /// journal is not).
  /// Compares addresses only: `j` may be a destroyed engine's.
  bool Owns(const Journal* j) const {
    for (const auto& mine : journals_) {
      if (mine.get() == j) return true;
    }
    return false;
  }
  /// Records the writer's progress (CommitQueue's folded observer).
  void OnFolded(const std::vector<JournalMark>& marks);
  /// After the writer has stopped: empties the journals it has folded whole.
  void TruncateFolded();

  /// The records Open read above the store's marks, in parts of about
  /// CommitQueue::kPartRows usage rows of one journal file, each with the
  /// mark of its last record, in sequence order within each journal; empty
  /// after HandOverReplay.
  const std::vector<CommitBatch>& replay() const { return replay_; }
  /// Hands replay() to the writer, which folds the parts in order, each in
  /// one transaction with its mark (a crash reads the parts not yet folded
  /// again at the next start).
  void HandOverReplay();

  /// Records replayed by Open, and whether a torn tail was dropped.
  size_t replayed() const { return replayed_; }
  bool dropped_torn_tail() const { return torn_; }

  JournalSet() = default;
  ~JournalSet();
  JournalSet(const JournalSet&) = delete;
  JournalSet& operator=(const JournalSet&) = delete;

 private:
  /// A part of replayed records, before they are put in order.
  struct ReplayPart {
    uint32_t journal;
    uint64_t first_seq;
    CommitBatch batch;
  };
  /// Reads the journal files in `dir` into replay_ (the records above
  /// `mark`), cutting torn tails off, and notes what each file holds.
  absl::Status ReadFiles(const std::string& dir, std::map<uint32_t, uint64_t>& mark,
                         std::map<uint32_t, Journal::Files>& found);
  /// Reads one file of journal `id` (its `bytes`, file `which`) into
  /// `parts`, cutting a torn tail off, and notes its size and last sequence.
  absl::Status ReadFile(const std::string& path, absl::string_view bytes, uint32_t id,
                        uint64_t mark, Journal::Files& files, int which,
                        std::vector<ReplayPart>& parts);

  /// Holds `journal.lock` in the dir (flock): one process per data dir.
  int lock_fd_ = -1;
  std::vector<std::unique_ptr<Journal>> journals_;
  CommitQueue* queue_ = nullptr;
  std::vector<CommitBatch> replay_;
  size_t replayed_ = 0;
  bool torn_ = false;
};

/// The name of journal `id`'s file `which` (0 or 1) in a data dir.
std::string JournalFileName(uint32_t id, int which);

}  // namespace quotum::engine
