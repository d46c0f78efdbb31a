// The per-I/O-thread journal (engine/journal.h) on a real SQLite store: its
// record format and torn tails, the replay at start-up against the store's
// marks, acknowledgement only after the write, the hand-over to the writer,
// and the fall-back to the store's commit when the journal cannot be written.
#include "quotum/engine/journal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/crc.hpp>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "quotum/base/mutex.h"
#include "quotum/engine/journal_codec.h"
#include "quotum/store/sqlite/sqlite_store.h"

namespace quotum::engine {
namespace {

namespace fs = std::filesystem;

const absl::Time kPeriod = absl::FromUnixSeconds(1'700'000'000);

CommitBatch OneCharge(uint64_t units, const std::string& idem_key = "") {
  CommitBatch b;
  b.usage.push_back(
      UsageDelta{"acme", "messages_sent", "whatsapp", kPeriod, kPeriod + absl::Minutes(5), units});
  if (!idem_key.empty()) {
    Decision d;
    d.allowed = true;
    d.requested = d.consumed = units;
    d.remaining = 100 - units;
    d.limit = 100;
    d.meter = "messages_sent";
    d.period_start = kPeriod;
    d.reset_at = kPeriod + absl::Hours(24 * 30);
    d.credits = CreditsUse{1, units, 200, 200 - units};
    b.idempotency.push_back(IdempotencyRecord{"acme", idem_key, 42, d, kPeriod});
  }
  b.topup_draws.push_back(TopupDraw{"acme", "t1", units});
  return b;
}

std::string Records(uint64_t from_seq, uint64_t to_seq) {
  std::string out;
  for (uint64_t seq = from_seq; seq <= to_seq; ++seq) AppendJournalRecord(seq, OneCharge(seq), out);
  return out;
}

TEST(JournalCodecTest, ARecordReadsBackAsWritten) {
  std::string bytes;
  AppendJournalRecord(7, OneCharge(3, "k1"), bytes);
  JournalReplay r;
  ReadJournalRecords(bytes, 0, r);
  EXPECT_FALSE(r.torn);
  EXPECT_EQ(r.records, 1u);
  EXPECT_EQ(r.last_seq, 7u);
  ASSERT_EQ(r.batch.usage.size(), 1u);
  EXPECT_EQ(r.batch.usage[0].channel, "whatsapp");
  EXPECT_EQ(r.batch.usage[0].quantity, 3u);
  EXPECT_EQ(r.batch.usage[0].at, kPeriod + absl::Minutes(5));
  ASSERT_EQ(r.batch.idempotency.size(), 1u);
  const Decision& d = r.batch.idempotency[0].decision;
  EXPECT_EQ(r.batch.idempotency[0].fingerprint, 42u);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.limit, std::optional<uint64_t>(100));
  EXPECT_EQ(d.remaining, 97u);
  ASSERT_TRUE(d.credits.has_value());
  EXPECT_EQ(d.credits->charged, 3u);
  ASSERT_EQ(r.batch.topup_draws.size(), 1u);
  EXPECT_EQ(r.batch.topup_draws[0].id, "t1");
}

TEST(JournalCodecTest, ATailCutAnywhereDropsOnlyTheCutRecord) {
  const std::string whole = Records(1, 3);
  std::string two = Records(1, 2);
  for (size_t cut = two.size(); cut < whole.size(); ++cut) {
    JournalReplay r;
    ReadJournalRecords(absl::string_view(whole).substr(0, cut), 0, r);
    EXPECT_EQ(r.records, 2u) << "cut at " << cut;
    EXPECT_EQ(r.good_bytes, two.size());
    EXPECT_EQ(r.torn, cut > two.size());
  }
}

TEST(JournalCodecTest, ACorruptRecordEndsTheRead) {
  std::string bytes = Records(1, 3);
  const size_t second = Records(1, 1).size();
  bytes[second + 20] ^= 0x40;  // inside the second record's payload
  JournalReplay r;
  ReadJournalRecords(bytes, 0, r);
  EXPECT_TRUE(r.torn);
  EXPECT_EQ(r.records, 1u);
  EXPECT_EQ(r.last_seq, 1u);
}

// The checksum is CRC-32 (ISO-HDLC) of the sequence and payload, exactly as
// the journals of earlier versions wrote it with boost::crc_32_type: a
// journal left by a crash replays after an upgrade.
TEST(JournalCodecTest, TheChecksumIsTheCrc32OfSequenceAndPayload) {
  const std::string bytes = Records(7, 7);
  ASSERT_GT(bytes.size(), 16u);
  uint32_t length = 0, stored = 0;
  std::memcpy(&length, bytes.data(), 4);
  std::memcpy(&stored, bytes.data() + 4, 4);
  ASSERT_EQ(bytes.size(), 16u + length);
  boost::crc_32_type crc;
  crc.process_bytes(bytes.data() + 8, bytes.size() - 8);
  EXPECT_EQ(stored, crc.checksum());
  boost::crc_32_type check;  // the standard check value of CRC-32
  check.process_bytes("123456789", 9);
  EXPECT_EQ(check.checksum(), 0xCBF43926u);
}

TEST(JournalCodecTest, RecordsAtOrBelowTheMarkAreSkipped) {
  JournalReplay r;
  ReadJournalRecords(Records(1, 5), 3, r);
  EXPECT_EQ(r.records, 2u);
  EXPECT_EQ(r.last_seq, 5u);
  uint64_t units = 0;
  for (const UsageDelta& u : r.batch.usage) units += u.quantity;
  EXPECT_EQ(units, 4u + 5u);
}

TEST(JournalCodecTest, OnlyTheFourCommutingKindsAreJournalable) {
  CommitBatch b = OneCharge(1, "k");
  EXPECT_TRUE(IsJournalable(b));
  b.sessions.push_back({});
  EXPECT_FALSE(IsJournalable(b));
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/quotum-journal-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    OpenStore();
  }
  void TearDown() override {
    CloseJournals();
    store_.reset();
    fs::remove_all(dir_);
  }
  /// The writer first (it reports to the set until it stops).
  void CloseJournals() {
    if (queue_) queue_->Stop();
    set_.reset();
    queue_.reset();
  }
  void TearDownStoreOnly() { store_.reset(); }
  void OpenStore() {
    auto s = store::sqlite::SqliteStore::Open({dir_ + "/quotum.db", false});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    CommitBatch b;
    b.tenants.push_back({"acme", "Acme", "pro", kPeriod, kPeriod});
    b.topups.push_back(TopupRecord{"t1", "acme", "messages_sent", 1000, 0, 500, kPeriod});
    store_->Commit(b).IgnoreError();  // already there after a reopen
  }
  absl::Status OpenJournals(size_t rotate_bytes = 8 << 20, bool start = true) {
    CloseJournals();
    queue_ = std::make_unique<CommitQueue>(store_.get(), CommitQueue::Observer(), fold_time_);
    JournalOptions o{dir_, 1, rotate_bytes};
    auto set = JournalSet::Open(o, store_.get(), queue_.get());
    if (!set.ok()) return set.status();
    set_ = std::move(*set);
    queue_->SetFoldedObserver(
        [s = set_.get()](const std::vector<JournalMark>& m) { s->OnFolded(m); });
    if (start) {
      set_->HandOverReplay();
      queue_->Start();
      queue_->WaitUntilFolded(absl::Seconds(5));
    }
    return absl::OkStatus();
  }
  std::string FileBytes(int which) {
    std::ifstream in(dir_ + "/" + JournalFileName(0, which), std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  uint64_t StoredUnits() {
    auto rows = store_->Periods("acme", kPeriod - absl::Hours(1));
    EXPECT_TRUE(rows.ok()) << rows.status();
    uint64_t n = 0;
    for (const CounterRow& r : *rows) {
      if (r.meter == "messages_sent") n += r.value;
    }
    return n;
  }
  uint64_t Mark(uint32_t journal) {
    auto marks = store_->JournalMarks();
    EXPECT_TRUE(marks.ok());
    for (const JournalMark& m : *marks) {
      if (m.journal == journal) return m.seq;
    }
    return 0;
  }
  void WriteFile(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << bytes;
  }
  /// Binds journal 0 to this thread; its flushes wait in posted_.
  Journal* Bind() {
    Journal* j = set_->at(0);
    j->BindToThisThread([this](std::function<void()> task) { posted_.push_back(std::move(task)); });
    return j;
  }
  void RunPosted() {
    std::vector<std::function<void()>> tasks;
    tasks.swap(posted_);
    for (auto& t : tasks) t();
  }
  /// `answer` is set by the completion, on whichever thread runs it (the
  /// flush here, or the writer when the store decides), under answer_mu_.
  bool Append(Journal* j, uint64_t units, std::optional<absl::Status>& answer) {
    CommitQueue::Done done = [this, &answer](const absl::Status& s) {
      MutexLock lock(&answer_mu_);
      answer = absl::Status(s.code(), s.message());
    };
    return j->Append(
        in_flight_, [&](CommitBatch& b) { b = OneCharge(units); }, done);
  }
  /// Waits up to a second for `answer` (see Append).
  void WaitForAnswer(const std::optional<absl::Status>& answer) {
    for (int i = 0; i < 500; ++i) {
      {
        MutexLock lock(&answer_mu_);
        if (answer.has_value()) return;
      }
      usleep(2000);
    }
  }
  void WaitForMark(uint32_t journal, uint64_t seq) {
    for (int i = 0; i < 2500 && Mark(journal) < seq; ++i) usleep(2000);
  }
  /// Notes how far journal 0 is folded (folded_to_) and in how many folds.
  /// After the first fold, the writer waits (up to 5 s) until a group that
  /// StartAndEnqueueAGroup enqueues is in, so that the group joins the first
  /// or the second fold, however slowly the test's thread runs.
  void WatchFolds() {
    queue_->SetFoldedObserver([this](const std::vector<JournalMark>& m) {
      for (const JournalMark& one : m) folded_to_.store(one.seq);
      if (folds_.fetch_add(1) == 0 && hold_first_fold_.load()) {
        for (int i = 0; i < 2500 && !group_enqueued_.load(); ++i) usleep(2000);
      }
      set_->OnFolded(m);
    });
  }
  /// Appends `n` records of one unit to journal 0, each flushed (so handed
  /// over) on its own; the writer has not started.
  void HandOverOneByOne(uint64_t n) {
    Journal* j = Bind();
    for (uint64_t i = 1; i <= n; ++i) {
      std::optional<absl::Status> answer;
      ASSERT_TRUE(Append(j, 1, answer));
      RunPosted();
      ASSERT_TRUE(answer && answer->ok());
    }
    j->Unbind();
    EXPECT_TRUE(queue_->TakesHandovers());  // well under kMaxAckedBacklog
  }
  /// Starts the writer, then enqueues a group of its own, which joins the
  /// writer's first or second fold (see WatchFolds); its answer sets
  /// answered_at_ to how far journal 0 was folded then, plus one (0: not
  /// answered).
  void StartAndEnqueueAGroup() {
    CommitQueue::Done done = [this](const absl::Status& s) {
      EXPECT_TRUE(s.ok()) << s;
      answered_at_.store(folded_to_.load() + 1);
    };
    hold_first_fold_.store(true);
    queue_->Start();
    ASSERT_TRUE(queue_->Enqueue(
        [](CommitBatch& b) {
          b.tenants.push_back({"beta", "Beta", "pro", kPeriod, kPeriod});
        },
        done));
    group_enqueued_.store(true);
  }

  std::string dir_;
  std::unique_ptr<store::sqlite::SqliteStore> store_;
  std::unique_ptr<CommitQueue> queue_;
  std::unique_ptr<JournalSet> set_;
  std::vector<std::function<void()>> posted_;
  std::atomic<uint16_t> in_flight_{0};
  Mutex answer_mu_;
  /// The writer's fold_time (zero: one part per fold).
  absl::Duration fold_time_ = CommitQueue::kFoldTime;
  std::atomic<uint64_t> folded_to_{0};
  std::atomic<uint64_t> answered_at_{0};
  std::atomic<int> folds_{0};
  std::atomic<bool> hold_first_fold_{false};
  std::atomic<bool> group_enqueued_{false};
};

TEST_F(JournalTest, StartUpReplaysTheRecordsTheStoreLacksOnce) {
  WriteFile(JournalFileName(0, 0), Records(1, 3));
  WriteFile(JournalFileName(0, 1), Records(4, 4));
  ASSERT_TRUE(OpenJournals().ok());
  EXPECT_EQ(set_->replayed(), 4u);
  EXPECT_EQ(StoredUnits(), 1u + 2u + 3u + 4u);
  EXPECT_EQ(Mark(0), 4u);
  // The files are kept until their records are in the store; a stop then empties them.
  queue_->Stop();
  set_->TruncateFolded();
  EXPECT_EQ(fs::file_size(dir_ + "/" + JournalFileName(0, 0)), 0u);
  EXPECT_EQ(fs::file_size(dir_ + "/" + JournalFileName(0, 1)), 0u);
  // The same files again (a crash before they were emptied) change nothing.
  CloseJournals();
  WriteFile(JournalFileName(0, 0), Records(1, 3));
  WriteFile(JournalFileName(0, 1), Records(4, 4));
  ASSERT_TRUE(OpenJournals().ok());
  EXPECT_EQ(set_->replayed(), 0u);
  EXPECT_EQ(StoredUnits(), 1u + 2u + 3u + 4u);
}

// A long replay is cut into parts of kPartRows rows, in sequence order
// whichever file holds the older records, each with the mark of its last
// record, so that the store's mark never passes a record not yet folded.
TEST_F(JournalTest, ReplayIsCutIntoPartsInSequenceOrderEachWithItsLastRecordsMark) {
  constexpr uint64_t kPart = CommitQueue::kPartRows;
  CloseJournals();
  WriteFile(JournalFileName(0, 1), Records(1, kPart + 2));              // the older file
  WriteFile(JournalFileName(0, 0), Records(kPart + 3, 2 * kPart + 5));  // the active one
  ASSERT_TRUE(OpenJournals(8 << 20, /*start=*/false).ok());
  ASSERT_EQ(set_->replayed(), 2 * kPart + 5);
  std::vector<uint64_t> marks, sizes;
  for (const CommitBatch& part : set_->replay()) {
    ASSERT_EQ(part.journal_marks.size(), 1u);
    marks.push_back(part.journal_marks[0].seq);
    sizes.push_back(part.usage.size());
  }
  EXPECT_EQ(marks, (std::vector<uint64_t>{kPart, kPart + 2, 2 * kPart + 2, 2 * kPart + 5}));
  EXPECT_EQ(sizes, (std::vector<uint64_t>{kPart, 2, kPart, 3}));
  set_->HandOverReplay();
  queue_->Start();
  WaitForMark(0, 2 * kPart + 5);
  const uint64_t n = 2 * kPart + 5;
  EXPECT_EQ(StoredUnits(), n * (n + 1) / 2);
}

// A request that needs the group commit while a long replay is being folded
// is answered after one fold, not after the whole replay: before, a restart
// with 100,000 records to fold held such requests for seconds. (A fold_time
// of zero makes each fold one part.)
TEST_F(JournalTest, AGroupCommitWaitsForOneFoldOfAReplayNotAllOfIt) {
  constexpr uint64_t kPart = CommitQueue::kPartRows;
  WriteFile(JournalFileName(0, 0), Records(1, 8 * kPart));
  fold_time_ = absl::ZeroDuration();
  ASSERT_TRUE(OpenJournals(8 << 20, /*start=*/false).ok());
  WatchFolds();
  set_->HandOverReplay();
  StartAndEnqueueAGroup();
  WaitForMark(0, 8 * kPart);
  ASSERT_EQ(Mark(0), 8 * kPart);
  ASSERT_GT(answered_at_.load(), 0u) << "the group was never answered";
  EXPECT_LE(answered_at_.load() - 1, 2 * kPart);  // with the first or second part
  CloseJournals();  // joins the writer, which counts folds after committing
  EXPECT_EQ(folds_.load(), 8);
}

// The same for records handed over live: a backlog of many flushes is folded
// in order, a fold at a time, each in a transaction of its own, so that a
// group that falls back to the store's commit waits for one fold.
TEST_F(JournalTest, AGroupCommitWaitsForOneFoldOfALiveBacklogNotAllOfIt) {
  constexpr uint64_t kPart = CommitQueue::kPartRows;
  fold_time_ = absl::ZeroDuration();
  ASSERT_TRUE(OpenJournals(8 << 20, /*start=*/false).ok());
  WatchFolds();
  HandOverOneByOne(8 * kPart);  // joined into eight parts
  StartAndEnqueueAGroup();
  WaitForMark(0, 8 * kPart);
  ASSERT_EQ(Mark(0), 8 * kPart);
  EXPECT_EQ(StoredUnits(), 8 * kPart);
  ASSERT_GT(answered_at_.load(), 0u) << "the group was never answered";
  EXPECT_LE(answered_at_.load() - 1, 2 * kPart);
  CloseJournals();
  EXPECT_EQ(folds_.load(), 8);
}

// A fold takes as many parts as the writer expects to fold in its
// fold_time, starting from one part and at most doubling from one fold to the
// next: with time to spare (10 s), eight parts take folds of 1, 2 and 4 parts
// and then the last one.
TEST_F(JournalTest, AFoldTakesAsManyPartsAsFitItsTime) {
  constexpr uint64_t kPart = CommitQueue::kPartRows;
  fold_time_ = absl::Seconds(10);
  ASSERT_TRUE(OpenJournals(8 << 20, /*start=*/false).ok());
  WatchFolds();
  HandOverOneByOne(8 * kPart);
  queue_->Start();
  WaitForMark(0, 8 * kPart);
  ASSERT_EQ(Mark(0), 8 * kPart);
  EXPECT_EQ(StoredUnits(), 8 * kPart);
  CloseJournals();
  EXPECT_EQ(folds_.load(), 4);
}

// Open commits nothing: it reads the records for the caller's memory and
// the writer folds them once handed over. A crash before that fold leaves
// the files as they were, and the next start reads the same records again.
TEST_F(JournalTest, ReplayedRecordsWaitForTheWriterAndSurviveACrashBeforeItsFold) {
  WriteFile(JournalFileName(0, 0), Records(1, 3));
  ASSERT_TRUE(OpenJournals(8 << 20, /*start=*/false).ok());
  EXPECT_EQ(set_->replayed(), 3u);
  EXPECT_EQ(StoredUnits(), 0u);
  EXPECT_EQ(Mark(0), 0u);
  CloseJournals();  // the writer never ran: a crash before the fold
  ASSERT_TRUE(OpenJournals(8 << 20, /*start=*/false).ok());
  ASSERT_EQ(set_->replayed(), 3u);
  ASSERT_EQ(set_->replay().size(), 1u);
  ASSERT_EQ(set_->replay()[0].usage.size(), 3u);
  EXPECT_EQ(set_->replay()[0].journal_marks.size(), 1u);
  set_->HandOverReplay();
  EXPECT_TRUE(set_->replay().empty());
  queue_->Start();
  WaitForMark(0, 3);
  EXPECT_EQ(StoredUnits(), 1u + 2u + 3u);
  // Records appended after the replay follow it in the same file, above its mark.
  Journal* j = Bind();
  std::optional<absl::Status> answer;
  ASSERT_TRUE(Append(j, 10, answer));
  RunPosted();
  ASSERT_TRUE(answer.has_value() && answer->ok());
  WaitForMark(0, 4);
  j->Unbind();
  JournalReplay a;
  ReadJournalRecords(FileBytes(0), 0, a);
  EXPECT_EQ(a.records, 4u);
  EXPECT_EQ(a.last_seq, 4u);
  CloseJournals();
  ASSERT_TRUE(OpenJournals().ok());
  EXPECT_EQ(set_->replayed(), 0u);
  EXPECT_EQ(StoredUnits(), 1u + 2u + 3u + 10u);
}

// A replay larger than the backlog the writer lets wait does not stop the
// journals: they go on acknowledging while the writer folds it.
TEST_F(JournalTest, AReplayLargerThanTheBacklogLeavesTheJournalsAcknowledging) {
  const uint64_t n = CommitQueue::kMaxAckedBacklog + 1;
  WriteFile(JournalFileName(0, 0), Records(1, n));
  ASSERT_TRUE(OpenJournals(8 << 20, /*start=*/false).ok());
  ASSERT_EQ(set_->replayed(), n);
  set_->HandOverReplay();
  EXPECT_TRUE(queue_->TakesHandovers());
  Journal* j = Bind();
  std::optional<absl::Status> answer;
  ASSERT_TRUE(Append(j, 5, answer));
  RunPosted();
  // Answered by the journal's write: the writer has not even started.
  ASSERT_TRUE(answer.has_value() && answer->ok());
  EXPECT_TRUE(queue_->TakesHandovers());
  queue_->Start();
  // A read waits for the replay's fold past its own short timeout.
  queue_->WaitUntilFolded(absl::Milliseconds(1));
  EXPECT_EQ(Mark(0), n + 1);
  EXPECT_EQ(StoredUnits(), n * (n + 1) / 2 + 5);
  j->Unbind();
}

TEST_F(JournalTest, AFoldCutShortByACrashIsFinishedFromTheMark) {
  // The writer folded records 1-3 (their units and the mark in one
  // transaction) and the process died before the files were emptied.
  CommitBatch folded;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    CommitBatch one = OneCharge(seq);
    MoveJournalRecords(one, folded);
  }
  folded.journal_marks.push_back({0, 3});
  ASSERT_TRUE(store_->Commit(folded).ok());
  WriteFile(JournalFileName(0, 0), Records(1, 5));
  ASSERT_TRUE(OpenJournals().ok());
  EXPECT_EQ(set_->replayed(), 2u);
  EXPECT_EQ(StoredUnits(), 1u + 2u + 3u + 4u + 5u);
  EXPECT_EQ(Mark(0), 5u);
}

TEST_F(JournalTest, ATornTailIsDroppedAndTheRestReplayed) {
  std::string bytes = Records(1, 2);
  const std::string third = Records(3, 3);
  bytes += third.substr(0, third.size() - 3);
  WriteFile(JournalFileName(0, 0), bytes);
  ASSERT_TRUE(OpenJournals().ok());
  EXPECT_TRUE(set_->dropped_torn_tail());
  EXPECT_EQ(StoredUnits(), 1u + 2u);
  // The next record written continues after the last good one.
  Journal* j = Bind();
  std::optional<absl::Status> answer;
  ASSERT_TRUE(Append(j, 10, answer));
  RunPosted();
  WaitForMark(0, 3);
  EXPECT_EQ(Mark(0), 3u);
  EXPECT_EQ(StoredUnits(), 1u + 2u + 10u);
  j->Unbind();
}

TEST_F(JournalTest, ARequestIsAnsweredOnlyAfterItsRecordIsWritten) {
  ASSERT_TRUE(OpenJournals().ok());
  Journal* j = Bind();
  std::optional<absl::Status> first, second;
  ASSERT_TRUE(Append(j, 2, first));
  // What the file holds when the first answer is given.
  size_t records_at_answer = 0;
  CommitQueue::Done done = [&](const absl::Status& s) {
    second = s;
    JournalReplay seen;
    ReadJournalRecords(FileBytes(0), 0, seen);
    records_at_answer = seen.records;
  };
  ASSERT_TRUE(j->Append(
      in_flight_, [&](CommitBatch& b) { b = OneCharge(5); }, done));
  EXPECT_FALSE(first.has_value());  // nothing answered before the flush
  EXPECT_EQ(in_flight_.load(), 2);
  EXPECT_EQ(fs::file_size(dir_ + "/" + JournalFileName(0, 0)), 0u);
  ASSERT_EQ(posted_.size(), 1u);  // one flush for both
  RunPosted();
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_TRUE(first->ok() && second->ok());
  EXPECT_EQ(in_flight_.load(), 0);
  EXPECT_EQ(records_at_answer, 2u);  // both written before any answer
  // The writer folds them into the store with the mark.
  WaitForMark(0, 2);
  EXPECT_EQ(StoredUnits(), 7u);
  j->Unbind();
}

// Every file of this process stops growing for the scope's life (writes past
// 1 byte fail with EFBIG, as they would with ENOSPC on a full disk).
class NoFileMayGrow {
 public:
  NoFileMayGrow() {
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old_);
    rlimit one = old_;
    one.rlim_cur = 1;
    ok_ = setrlimit(RLIMIT_FSIZE, &one) == 0;
  }
  ~NoFileMayGrow() { setrlimit(RLIMIT_FSIZE, &old_); }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  bool ok_ = false;
};

TEST_F(JournalTest, AFullJournalDiskLeavesTheAnswerToTheStore) {
  // The journals on a full 64 KiB tmpfs, the store elsewhere.
  const std::string small = dir_ + "/small";
  fs::create_directory(small);
  if (mount("tmpfs", small.c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                 << "); AFullDiskAnswers503AndKeepsNothing covers a failed write";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{small};
  queue_ = std::make_unique<CommitQueue>(store_.get());
  auto set = JournalSet::Open({small, 1, false}, store_.get(), queue_.get());
  ASSERT_TRUE(set.ok()) << set.status();
  set_ = std::move(*set);
  queue_->Start();
  { std::ofstream(small + "/filler", std::ios::binary) << std::string(64 << 10, 'x'); }
  Journal* j = Bind();
  std::optional<absl::Status> answer;
  ASSERT_TRUE(Append(j, 4, answer));
  RunPosted();
  // The store's commit answers instead, on the writer's thread.
  WaitForAnswer(answer);
  ASSERT_TRUE(answer.has_value());
  EXPECT_TRUE(answer->ok()) << *answer;
  EXPECT_EQ(in_flight_.load(), 0);
  EXPECT_EQ(StoredUnits(), 4u);
  EXPECT_EQ(fs::file_size(small + "/" + JournalFileName(0, 0)), 0u);  // cut back
  // Room again: the journal is written again.
  fs::remove(small + "/filler");
  std::optional<absl::Status> next;
  ASSERT_TRUE(Append(j, 1, next));
  RunPosted();
  ASSERT_TRUE(next.has_value() && next->ok());
  EXPECT_GT(fs::file_size(small + "/" + JournalFileName(0, 0)), 0u);
  j->Unbind();
  CloseJournals();
}

TEST_F(JournalTest, AFullDiskAnswers503AndKeepsNothing) {
  ASSERT_TRUE(OpenJournals().ok());
  Journal* j = Bind();
  std::optional<absl::Status> before;
  ASSERT_TRUE(Append(j, 3, before));
  RunPosted();
  ASSERT_TRUE(before && before->ok());
  WaitForMark(0, 1);
  const uintmax_t size = fs::file_size(dir_ + "/" + JournalFileName(0, 0));
  std::optional<absl::Status> full;
  {
    NoFileMayGrow no_room;
    ASSERT_TRUE(no_room.ok());
    ASSERT_TRUE(Append(j, 7, full));
    RunPosted();
    WaitForAnswer(full);
  }
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->code(), absl::StatusCode::kUnavailable) << *full;
  EXPECT_EQ(fs::file_size(dir_ + "/" + JournalFileName(0, 0)), size);  // cut back
  EXPECT_EQ(StoredUnits(), 3u);
  // Room again: the journal goes on where it was.
  std::optional<absl::Status> after;
  ASSERT_TRUE(Append(j, 1, after));
  RunPosted();
  ASSERT_TRUE(after && after->ok());
  WaitForMark(0, 3);
  EXPECT_EQ(StoredUnits(), 4u);
  j->Unbind();
  // What the journal holds replays to the same: nothing of the refused one.
  CloseJournals();
  ASSERT_TRUE(OpenJournals().ok());
  EXPECT_EQ(StoredUnits(), 4u);
}

TEST_F(JournalTest, AFailedFoldIsRetriedAndNeverFailsTheAcknowledgedRecords) {
  ASSERT_TRUE(OpenJournals(8 << 20, /*start=*/false).ok());
  Journal* j = Bind();
  std::optional<absl::Status> answer;
  ASSERT_TRUE(Append(j, 6, answer));
  RunPosted();  // written and handed over; the writer has not started
  ASSERT_TRUE(answer && answer->ok());
  {
    NoFileMayGrow no_room;
    ASSERT_TRUE(no_room.ok());
    queue_->Start();
    for (int i = 0; i < 500 && queue_->TakesHandovers(); ++i) usleep(2000);
    EXPECT_FALSE(queue_->TakesHandovers());  // the fold failed
    EXPECT_EQ(Mark(0), 0u);
  }
  WaitForMark(0, 1);  // retried once there is room
  EXPECT_EQ(StoredUnits(), 6u);
  EXPECT_TRUE(queue_->TakesHandovers());
  j->Unbind();
}

TEST_F(JournalTest, AFoldThatFailsWhileStoppingLeavesEverythingToTheReplay) {
  ASSERT_TRUE(OpenJournals(8 << 20, /*start=*/false).ok());
  Journal* j = Bind();
  std::optional<absl::Status> answer;
  ASSERT_TRUE(Append(j, 6, answer));
  RunPosted();
  j->Unbind();
  {
    NoFileMayGrow no_room;
    ASSERT_TRUE(no_room.ok());
    queue_->Start();
    queue_->Stop();  // its last fold fails: the records stay in the journal
  }
  EXPECT_EQ(Mark(0), 0u);
  EXPECT_EQ(StoredUnits(), 0u);
  set_->TruncateFolded();  // nothing folded: nothing emptied
  EXPECT_GT(fs::file_size(dir_ + "/" + JournalFileName(0, 0)), 0u);
  ASSERT_TRUE(OpenJournals().ok());
  EXPECT_EQ(set_->replayed(), 1u);
  EXPECT_EQ(StoredUnits(), 6u);
}

TEST_F(JournalTest, AJournalMovesToItsOtherFileOnceTheFirstIsFolded) {
  ASSERT_TRUE(OpenJournals(/*rotate_bytes=*/1).ok());
  Journal* j = Bind();
  uint64_t units = 0;
  for (uint64_t n = 1; n <= 4; ++n) {
    std::optional<absl::Status> answer;
    ASSERT_TRUE(Append(j, n, answer));
    RunPosted();
    ASSERT_TRUE(answer && answer->ok());
    units += n;
    WaitForMark(0, n);
  }
  // Records 1 and 3 went to file a, 2 and 4 to b; each move emptied the
  // file it moved to (its records were in the store).
  JournalReplay a, b;
  ReadJournalRecords(FileBytes(0), 0, a);
  ReadJournalRecords(FileBytes(1), 0, b);
  EXPECT_EQ(a.records + b.records, 2u);
  EXPECT_EQ(b.last_seq, 4u);
  j->Unbind();
  // A crash here: the replay adds nothing the store has.
  CloseJournals();
  ASSERT_TRUE(OpenJournals().ok());
  EXPECT_EQ(set_->replayed(), 0u);
  EXPECT_EQ(StoredUnits(), units);
}

TEST_F(JournalTest, AFileWithAnIdNoQuotumWritesIsRefused) {
  WriteFile(JournalFileName(JournalSet::kMaxJournals, 0), Records(1, 1));
  absl::Status s = OpenJournals();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "is not a journal this quotum writes")) << s;
}

TEST_F(JournalTest, ASecondProcessCannotOpenTheSameDir) {
  ASSERT_TRUE(OpenJournals().ok());
  CommitQueue other(store_.get());
  auto second = JournalSet::Open({dir_, 1, false}, store_.get(), &other);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "in use by another quotum"))
      << second.status();
}

}  // namespace
}  // namespace quotum::engine
