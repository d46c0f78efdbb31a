#include "quotum/engine/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "quotum/base/status_macros.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/journal_codec.h"

namespace quotum::engine {
namespace {

thread_local Journal* tls_journal = nullptr;

absl::Status ErrnoStatus(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Writes all of `bytes` to `fd` (opened with O_APPEND).
absl::Status WriteAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("journal write");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// The journal id and file index of a journal file's name, or false.
bool ParseJournalFileName(const std::string& name, uint32_t& id, int& which) {
  // journal-<id>-<a|b>.qj
  if (!absl::StartsWith(name, "journal-") || !absl::EndsWith(name, ".qj")) return false;
  std::vector<std::string> parts = absl::StrSplit(name.substr(0, name.size() - 3), '-');
  if (parts.size() != 3 || (parts[2] != "a" && parts[2] != "b")) return false;
  which = parts[2] == "a" ? 0 : 1;
  return absl::SimpleAtoi(parts[1], &id);
}

absl::StatusOr<std::string> ReadWhole(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot read ", path.string()));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Holds `journal.lock` in `dir` (flock): one process per data dir.
absl::StatusOr<int> LockDataDir(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "journal.lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(absl::StrCat("cannot open ", path));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is in use by another quotum (", path, " is locked)"));
  }
  return fd;
}

// Opens journal `id`'s two files in `dir` for appending, making missing ones.
absl::Status OpenFiles(const std::string& dir, uint32_t id, Journal::Files& files) {
  for (int which = 0; which < 2; ++which) {
    const std::string path = (std::filesystem::path(dir) / JournalFileName(id, which)).string();
    files.fds[which] = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (files.fds[which] < 0) {
      if (which == 1) ::close(files.fds[0]);
      return ErrnoStatus(absl::StrCat("cannot open ", path));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string JournalFileName(uint32_t id, int which) {
  return absl::StrCat("journal-", id, "-", which == 0 ? "a" : "b", ".qj");
}

Journal::Journal(uint32_t id, const Files& files, uint64_t next_seq, uint64_t folded,
                 size_t rotate_bytes, CommitQueue* queue, JournalCounters counters)
    : id_(id),
      fds_{files.fds[0], files.fds[1]},
      bytes_{files.bytes[0], files.bytes[1]},
      last_seq_{files.last_seq[0], files.last_seq[1]},
      active_(files.last_seq[1] > files.last_seq[0] ? 1 : 0),
      next_seq_(next_seq),
      rotate_bytes_(rotate_bytes),
      queue_(queue),
      counters_(counters),
      folded_(folded) {}

Journal::~Journal() {
  for (int fd : fds_) ::close(fd);
}

Journal* Journal::OfThisThread() { return tls_journal; }

void Journal::BindToThisThread(Post post) {
  post_ = std::move(post);
  tls_journal = this;
}

void Journal::Unbind() {
  Flush();
  tls_journal = nullptr;
}

bool Journal::Append(std::atomic<uint16_t>& in_flight, absl::FunctionRef<void(CommitBatch&)> fill,
                     Done& done) {
  CommitBatch one;
  fill(one);
  assert(IsJournalable(one));
  // A tenant with this many records in buffers, or a writer that is behind,
  // failing or stopping: the store's group commit decides, as without a
  // journal.
  if (!queue_->TakesHandovers() || in_flight.load(std::memory_order_relaxed) == UINT16_MAX) {
    return queue_->Enqueue([&](CommitBatch& b) { MoveJournalRecords(one, b); }, done);
  }
  AppendJournalRecord(next_seq_++, one, buf_);
  MoveJournalRecords(one, batch_);
  in_flight.fetch_add(1, std::memory_order_relaxed);
  in_flight_.push_back(&in_flight);
  done_.push_back(std::move(done));
  if (!flush_posted_) {
    flush_posted_ = true;
    post_([this] { Flush(); });
  }
  return true;
}

void Journal::Flush() {
  flush_posted_ = false;
  if (done_.empty()) return;
  if (absl::Status s = WriteOut(); !s.ok()) {
    Count(counters_.writes_failed);
    return FallBack(s);
  }
  Count(counters_.writes_ok);
  Count(counters_.records, done_.size());
  last_seq_[active_] = next_seq_ - 1;
  batch_.journal_marks.push_back({id_, next_seq_ - 1});
  queue_->Handover(batch_);
  batch_ = CommitBatch();
  ReleaseInFlight();
  std::vector<Done> done;
  done.swap(done_);
  for (Done& d : done) d(absl::OkStatus());
}

void Journal::ReleaseInFlight() {
  for (std::atomic<uint16_t>* n : in_flight_) n->fetch_sub(1, std::memory_order_release);
  in_flight_.clear();
}

void Journal::FallBack(const absl::Status& why) {
  static std::atomic<int> logged{0};
  if (logged.fetch_add(1) < 10) {
    std::cerr << "quotum: journal " << id_ << ": " << why.message()
              << "; these requests wait for the store's commit instead" << std::endl;
  }
  Done all = [done = std::move(done_)](const absl::Status& s) mutable {
    for (Done& d : done) d(s);
  };
  done_.clear();
  const bool queued = queue_->Enqueue([&](CommitBatch& b) { MoveJournalRecords(batch_, b); }, all);
  batch_ = CommitBatch();
  ReleaseInFlight();
  if (!queued)
    all(Error(absl::StatusCode::kUnavailable, "shutting_down", "The server is stopping."));
}

void Journal::MaybeRotate() {
  const int other = 1 - active_;
  if (bytes_[active_] < rotate_bytes_) return;
  if (folded_.load(std::memory_order_acquire) < last_seq_[other]) return;  // not yet in the store
  if (::ftruncate(fds_[other], 0) != 0) return;
  bytes_[other] = 0;
  active_ = other;
}

absl::Status Journal::WriteOut() {
  MaybeRotate();
  const int fd = fds_[active_];
  absl::Status s = WriteAll(fd, buf_);
  if (!s.ok()) {
    // Whatever part reached the file is cut off, so that the next record
    // follows the last good one. A file that cannot be cut back may hold
    // records the store will also get (or that were refused): stop, and let
    // the next start replay what is whole.
    if (::ftruncate(fd, static_cast<off_t>(bytes_[active_])) != 0) {
      std::cerr << "quotum: journal " << id_ << ": " << s.message()
                << ", and the file cannot be cut back: " << std::strerror(errno) << "; stopping"
                << std::endl;
      std::abort();
    }
  } else {
    bytes_[active_] += buf_.size();
  }
  buf_.clear();
  return s;
}

void Journal::NoteFolded(uint64_t seq) {
  uint64_t seen = folded_.load(std::memory_order_relaxed);
  while (seen < seq && !folded_.compare_exchange_weak(seen, seq, std::memory_order_release)) {
  }
}

void Journal::TruncateIfFolded() {
  if (!done_.empty()) return;
  const uint64_t folded = folded_.load(std::memory_order_acquire);
  if (folded < last_seq_[0] || folded < last_seq_[1]) return;
  for (int i = 0; i < 2; ++i) {
    if (::ftruncate(fds_[i], 0) == 0) bytes_[i] = 0;
  }
}

absl::StatusOr<std::unique_ptr<JournalSet>> JournalSet::Open(const JournalOptions& o, Store* store,
                                                             CommitQueue* queue,
                                                             JournalCounters counters) {
  absl::StatusOr<std::vector<JournalMark>> marks = store->JournalMarks();
  if (!marks.ok()) return marks.status();
  std::map<uint32_t, uint64_t> mark;
  for (const JournalMark& m : *marks) mark[m.journal] = m.seq;

  auto set = std::make_unique<JournalSet>();
  set->queue_ = queue;
  absl::StatusOr<int> lock = LockDataDir(o.dir);
  if (!lock.ok()) return lock.status();
  set->lock_fd_ = *lock;
  std::map<uint32_t, Journal::Files> found;
  if (absl::Status s = set->ReadFiles(o.dir, mark, found); !s.ok()) return s;
  if (set->replayed_ > 0) {
    std::cerr << "quotum: " << set->replayed_ << " journal records to replay" << std::endl;
  }

  const uint32_t count = std::max<uint32_t>(o.count, found.empty() ? 0 : found.rbegin()->first + 1);
  for (uint32_t id = 0; id < count; ++id) {
    Journal::Files files = found[id];
    if (absl::Status s = OpenFiles(o.dir, id, files); !s.ok()) return s;
    const uint64_t last = std::max(files.last_seq[0], files.last_seq[1]);
    set->journals_.push_back(std::make_unique<Journal>(id, files, std::max(mark[id], last) + 1,
                                                       mark[id], o.rotate_bytes, queue, counters));
  }
  return set;
}

absl::Status JournalSet::ReadFiles(const std::string& dir, std::map<uint32_t, uint64_t>& mark,
                                   std::map<uint32_t, Journal::Files>& found) {
  std::vector<ReplayPart> parts;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    uint32_t id = 0;
    int which = 0;
    if (!ParseJournalFileName(entry.path().filename().string(), id, which)) continue;
    if (id >= kMaxJournals) {
      return absl::FailedPreconditionError(absl::StrCat(
          entry.path().string(), " is not a journal this quotum writes (ids are below ",
          kMaxJournals, "): move it out of ", dir));
    }
    absl::StatusOr<std::string> bytes = ReadWhole(entry.path());
    if (!bytes.ok()) return bytes.status();
    RETURN_IF_ERROR(ReadFile(entry.path().string(), *bytes, id, mark[id], found[id], which, parts));
  }
  if (ec) return absl::UnavailableError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  // A journal's files hold disjoint ranges of its sequence (it moves to the
  // other file only once that one is all in the store), so ordering the
  // parts by their first sequence folds each journal in order.
  std::sort(parts.begin(), parts.end(), [](const ReplayPart& a, const ReplayPart& b) {
    return std::tie(a.journal, a.first_seq) < std::tie(b.journal, b.first_seq);
  });
  for (ReplayPart& c : parts) replay_.push_back(std::move(c.batch));
  return absl::OkStatus();
}

absl::Status JournalSet::ReadFile(const std::string& path, absl::string_view bytes, uint32_t id,
                                  uint64_t mark, Journal::Files& files, int which,
                                  std::vector<ReplayPart>& parts) {
  size_t at = 0;
  uint64_t last_seq = 0;
  for (;;) {
    JournalReplay one;
    ReadJournalRecords(bytes.substr(at), mark, one, CommitQueue::kPartRows);
    at += one.good_bytes;
    last_seq = std::max(last_seq, one.last_seq);
    if (one.records > 0) {
      replayed_ += one.records;
      one.batch.journal_marks.push_back({id, one.last_seq});
      parts.push_back({id, one.first_seq, std::move(one.batch)});
    }
    if (one.torn) {
      std::cerr << "quotum: " << path << ": dropped a torn record at byte " << at << " of "
                << bytes.size() << std::endl;
      torn_ = true;
      // Cut off, so that what the journal appends next follows the last good record.
      if (::truncate(path.c_str(), static_cast<off_t>(at)) != 0) {
        return ErrnoStatus(absl::StrCat("cannot cut the torn tail off ", path));
      }
    }
    if (!one.more) break;
  }
  files.bytes[which] = at;
  files.last_seq[which] = last_seq;
  return absl::OkStatus();
}

void JournalSet::HandOverReplay() {
  if (!replay_.empty()) queue_->HandoverReplay(std::move(replay_));
  replay_.clear();
}

JournalSet::~JournalSet() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void JournalSet::OnFolded(const std::vector<JournalMark>& marks) {
  for (const JournalMark& m : marks) {
    if (m.journal < journals_.size()) journals_[m.journal]->NoteFolded(m.seq);
  }
}

void JournalSet::TruncateFolded() {
  for (auto& j : journals_) j->TruncateIfFolded();
}

}  // namespace quotum::engine
