// The engine with a journal bound to the calling thread (engine/journal.h),
// on the embedded store (the only one that keeps journal marks): a pending
// idempotency key's retry is answered once the first is written, and a store
// that fails makes decisions wait for its own status without losing anything
// already acknowledged.
#include <unistd.h>

#include <filesystem>

#include "engine_fixture.h"
#include "quotum/engine/commit_queue.h"
#include "quotum/store/sqlite/sqlite_store.h"

namespace quotum::engine {
namespace {

class JournalEngineTest : public EngineTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/quotum-journal-engine-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    journal_dir_ = tmpl;
    EngineTest::SetUp();
  }
  void TearDown() override {
    if (engine_) engine_->UnbindJournal();
    EngineTest::TearDown();
    std::filesystem::remove_all(journal_dir_);
  }
  void Configure(EngineOptions& o) const override { o.journal = {journal_dir_, 1, false}; }

  /// Binds the engine's journal to this thread; its flushes wait in posted_.
  void BindHere() {
    engine_->BindJournal(
        0, [this](std::function<void()> task) { posted_.push_back(std::move(task)); });
  }
  void RunPosted() {
    std::vector<std::function<void()>> tasks;
    tasks.swap(posted_);
    for (auto& t : tasks) t();
  }
  static MeterRequest Request(uint64_t q, const std::string& key = "") {
    MeterRequest req;
    req.meter = "messages_sent";
    req.quantity = q;
    req.idempotency_key = key;
    req.operation = "test";
    return req;
  }
  /// Consumes, flushes this thread's journal, and waits for the answer
  /// (given by the flush, or by the writer when the store decides).
  absl::StatusOr<Decision> ConsumeAndFlush(const Principal& who, uint64_t q) {
    Mutex mu;
    CondVar answered;
    std::optional<absl::StatusOr<Decision>> out;
    engine_->Consume(who, Request(q), [&](absl::StatusOr<Decision> d) {
      if (!d.ok()) d = OwnStatus(d.status());
      MutexLock lock(&mu);
      out = std::move(d);
      answered.Signal();
    });
    RunPosted();
    MutexLock lock(&mu);
    while (!out) answered.Wait(&mu);
    return std::move(*out);
  }

  /// The messages_sent units the store itself holds for `tenant` (engine closed).
  uint64_t StoredUnits(const std::string& tenant) {
    auto store = OpenStore();
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return 0;
    auto rows = (*store)->Periods(tenant, absl::InfinitePast());
    EXPECT_TRUE(rows.ok()) << rows.status();
    uint64_t units = 0;
    for (const CounterRow& r : rows.ok() ? *rows : std::vector<CounterRow>{}) {
      if (r.meter == "messages_sent") units += r.value;
    }
    return units;
  }

  std::string journal_dir_;
  std::vector<std::function<void()>> posted_;
};

TEST_P(JournalEngineTest, ARetryOfAPendingKeyIsAnsweredOnceTheFirstIsWritten) {
  Principal who = NewTenant("j1", "pro");
  BindHere();
  std::optional<absl::StatusOr<Decision>> first, retry;
  engine_->Consume(who, Request(5, "k1"), [&](absl::StatusOr<Decision> d) { first = d; });
  engine_->Consume(who, Request(5, "k1"), [&](absl::StatusOr<Decision> d) { retry = d; });
  EXPECT_FALSE(first.has_value());  // nothing answered before the journal's write
  EXPECT_FALSE(retry.has_value());
  ASSERT_EQ(posted_.size(), 1u);
  RunPosted();
  ASSERT_TRUE(first.has_value() && first->ok());
  ASSERT_TRUE(retry.has_value() && retry->ok()) << (retry ? retry->status() : absl::OkStatus());
  EXPECT_FALSE((*first)->replayed);
  EXPECT_TRUE((*retry)->replayed);
  EXPECT_EQ((*retry)->consumed, 5u);
  EXPECT_EQ(Used(who, "messages_sent"), 5u);
  engine_->UnbindJournal();
  Reopen();
  EXPECT_EQ(Used(Who("j1"), "messages_sent"), 5u);
}

TEST_P(JournalEngineTest, WhileTheStoreFailsDecisionsGetItsStatusAndNothingAcknowledgedIsLost) {
  Principal who = NewTenant("j2", "pro");
  BindHere();
  uint64_t acknowledged = 0;
  ASSERT_TRUE(ConsumeAndFlush(who, 3).ok());
  acknowledged += 3;
  flaky_->fail = true;
  // Decisions written to the journal are acknowledged until the writer's
  // failed fold sends them to the group commit, whose status is the store's.
  bool refused = false;
  for (int i = 0; i < 500 && !refused; ++i) {
    absl::StatusOr<Decision> d = ConsumeAndFlush(who, 1);
    if (d.ok()) {
      acknowledged += 1;
    } else {
      refused = true;
      EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable) << d.status();
    }
    usleep(1000);
  }
  EXPECT_TRUE(refused);
  EXPECT_EQ(Used(who, "messages_sent"), acknowledged);  // the refused one was undone
  flaky_->fail = false;
  ASSERT_TRUE(ConsumeAndFlush(who, 2).ok());
  acknowledged += 2;
  EXPECT_EQ(Used(who, "messages_sent"), acknowledged);
  engine_->UnbindJournal();
  Reopen();
  EXPECT_EQ(Used(Who("j2"), "messages_sent"), acknowledged);
}

// Records acknowledged from the journal that the store lacked when the
// process stopped count at once after the restart: they are taken into
// memory from the journal, the writer folds them afterwards (once), and a
// retry of their idempotency key gets the first decision.
TEST_P(JournalEngineTest, RecordsTheStoreLackedAtStartUpCountAtOnceAndAreFoldedOnce) {
  Principal who = NewTenant("j3", "pro");
  BindHere();
  ASSERT_TRUE(ConsumeAndFlush(who, 3).ok());
  flaky_->fail = true;  // from here, no fold reaches the store
  std::optional<absl::StatusOr<Decision>> first;
  engine_->Consume(who, Request(4, "k3"), [&](absl::StatusOr<Decision> d) { first = d; });
  RunPosted();
  ASSERT_TRUE(first.has_value() && first->ok()) << (first ? first->status() : absl::OkStatus());
  engine_->UnbindJournal();
  Close();  // the last fold fails: the record stays in the journal only
  EXPECT_LT(StoredUnits("j3"), 7u);
  Open();
  EXPECT_GE(engine_->journal_replayed(), 1u);
  EXPECT_EQ(Used(Who("j3"), "messages_sent"), 7u);  // before any fold
  absl::StatusOr<Decision> retry = Consume(Who("j3"), "messages_sent", 4, false, "k3");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->consumed, 4u);
  EXPECT_EQ(Used(Who("j3"), "messages_sent"), 7u);
  Reopen();
  EXPECT_EQ(engine_->journal_replayed(), 0u);  // folded before the stop
  EXPECT_EQ(Used(Who("j3"), "messages_sent"), 7u);
  Close();
  EXPECT_EQ(StoredUnits("j3"), 7u);
  Open();
}

INSTANTIATE_TEST_SUITE_P(Embedded, JournalEngineTest, ::testing::Values("sqlite"),
                         contract::StoreName);

// The writer alone, on the embedded store with commits that can be held and
// failed: a counter set enqueued while a fold of acknowledged records is
// being committed, made as a reconcile's repair makes it. When that commit
// fails, the fold is committed again after the set, which must then leave
// it out (CommitQueue::Retain), or its units would count twice.
TEST(CommitQueueRetainTest, ASetMadeWhileAFailingFoldWasInFlightCountsTheFoldOnce) {
  char tmpl[] = "/tmp/quotum-retain-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto inner = store::sqlite::SqliteStore::Open({dir + "/quotum.db", false});
  ASSERT_TRUE(inner.ok()) << inner.status();
  FlakyStore flaky(inner->get());
  const absl::Time period = absl::FromUnixSeconds(1'700'000'000);
  CommitBatch tenant;
  tenant.tenants.push_back({"acme", "Acme", "pro", period, period});
  ASSERT_TRUE(flaky.Commit(tenant).ok());
  Mutex mu;
  std::optional<absl::Status> set_status;
  {
    CommitQueue queue(&flaky);
    queue.Start();
    flaky.hold = true;
    CommitBatch acked;
    acked.usage.push_back(
        UsageDelta{"acme", "messages_sent", "", period, period + absl::Hours(1), 5});
    acked.journal_marks.push_back({0, 1});
    queue.Handover(acked);
    for (int i = 0; i < 2500 && flaky.holding.load() == 0; ++i) usleep(2000);
    ASSERT_EQ(flaky.holding.load(), 1);  // the fold's commit is in flight
    // Memory holds the 5 units; the fold is neither pending nor waiting.
    CommitQueue::Done done = [&](const absl::Status& s) {
      MutexLock lock(&mu);
      set_status = s;
    };
    ASSERT_TRUE(queue.EnqueueSeeingAcked(
        [&](CommitBatch& b, CommitQueue::EachAcked each_acked) {
          CounterRow set{"acme", "messages_sent", period, 5};
          LeaveOutUsage(b.usage, set);
          each_acked([&](const CommitBatch& part) { LeaveOutUsage(part.usage, set); });
          EXPECT_EQ(set.value, 5u);
          b.counter_sets.push_back(set);
        },
        done));
    flaky.fail_next = 1;
    flaky.hold = false;
    queue.WaitUntilFolded(absl::Seconds(5));
  }  // stopped: everything enqueued is committed or failed
  {
    MutexLock lock(&mu);
    ASSERT_TRUE(set_status.has_value());
    EXPECT_TRUE(set_status->ok()) << *set_status;
  }
  auto rows = (*inner)->Periods("acme", period - absl::Hours(1));
  ASSERT_TRUE(rows.ok()) << rows.status();
  uint64_t stored = 0;
  for (const CounterRow& r : *rows) {
    if (r.meter == "messages_sent") stored += r.value;
  }
  EXPECT_EQ(stored, 5u);
  inner->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace quotum::engine
