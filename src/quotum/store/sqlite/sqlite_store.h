#pragma once

#include <memory>
#include <string>
#include <thread>

#include "quotum/base/mutex.h"
#include "quotum/engine/store.h"
#include "quotum/store/sqlite/db.h"

namespace quotum::store::sqlite {

/// The embedded database's file in a data dir.
inline constexpr char kDatabaseFileName[] = "quotum.db";

struct SqliteOptions {
  /// Path of the database file (created if missing).
  std::string path;
  /// true: synchronous=FULL, each commit is fsynced (survives power loss).
  /// false: synchronous=NORMAL in WAL mode, each commit reaches the OS
  /// (survives a crash or kill -9 of the process).
  bool fsync_each_commit = false;
};

/// The embedded store: one SQLite file in WAL mode. Commit runs on the
/// engine's writer thread on its own connection; reads use a second
/// connection guarded by a mutex, and see only committed data.
class SqliteStore final : public engine::Store {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const SqliteOptions& options);
  ~SqliteStore() override;

  absl::Status Load(absl::Time idempotency_since, engine::SnapshotSink& sink) override;
  absl::Status Commit(const engine::CommitBatch& batch) override;
  absl::StatusOr<std::vector<engine::DailyRow>> Daily(const std::string& tenant_id,
                                                      absl::CivilDay from,
                                                      absl::CivilDay to) override;
  absl::StatusOr<std::vector<engine::HourlyRow>> Hourly(const std::string& tenant_id,
                                                        absl::Time from, absl::Time to) override;
  absl::StatusOr<std::vector<engine::DailyChannelRow>> DailyByChannel(const std::string& tenant_id,
                                                                      absl::CivilDay from,
                                                                      absl::CivilDay to) override;
  absl::StatusOr<std::vector<engine::CounterRow>> Periods(const std::string& tenant_id,
                                                          absl::Time since) override;
  absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> Channels(
      const std::string& tenant_id, const std::string& meter, absl::Time from,
      absl::Time to) override;
  // messages and the queue (sqlite_messages.cc)
  absl::StatusOr<std::optional<engine::MessageRecord>> FindMessage(const std::string& tenant_id,
                                                                   const std::string& id) override;
  absl::StatusOr<std::vector<engine::MessageRecord>> Messages(
      const std::string& tenant_id, const std::string& status,
      const std::optional<engine::MessageCursor>& after, size_t limit) override;
  absl::StatusOr<std::vector<engine::MessageRecord>> DueMessages(
      absl::Time now, absl::Time stale, size_t per_session, size_t limit,
      const std::optional<engine::DuePosition>& after) override;
  absl::Status RecentSends(absl::Time since,
                           absl::FunctionRef<void(const engine::MessageRecord&)> each) override;
  absl::StatusOr<std::vector<engine::WebhookRecord>> Webhooks(
      const std::string& tenant_id) override;
  absl::StatusOr<std::vector<engine::EventRecord>> UnrelayedEvents(size_t max) override;
  absl::StatusOr<std::optional<engine::EventRecord>> FindEvent(const std::string& id) override;
  absl::StatusOr<std::vector<engine::DeliveryRecord>> NextDeliveries(absl::Time now,
                                                                     size_t max) override;
  absl::StatusOr<std::vector<engine::DeliveryRecord>> Deliveries(const std::string& webhook_id,
                                                                 size_t limit) override;
  absl::StatusOr<std::optional<engine::DeliveryRecord>> FindDelivery(
      const std::string& id) override;
  absl::StatusOr<std::vector<engine::AttemptRecord>> Attempts(
      const std::string& delivery_id) override;
  absl::StatusOr<uint64_t> OutboxBacklog() override;
  absl::StatusOr<std::vector<engine::AlertRecord>> Alerts(const std::string& tenant_id,
                                                          absl::Time from, absl::Time to) override;
  absl::StatusOr<std::vector<engine::EventRecord>> Events(const std::string& tenant_id,
                                                          size_t limit) override;
  absl::StatusOr<std::vector<std::string>> TenantIds() override;
  absl::StatusOr<std::vector<std::pair<std::string, absl::Time>>> OpenPeriods(
      absl::Time before) override;
  absl::StatusOr<engine::TenantLeaseRows> LeaseRows(const std::string& tenant_id) override;
  absl::StatusOr<std::vector<engine::SubscriptionChange>> SubscriptionChanges(
      const std::string& tenant_id) override;
  absl::StatusOr<std::vector<engine::SubscriptionChange>> PendingPlanChanges() override;
  absl::StatusOr<std::vector<engine::AddonRecord>> Addons(const std::string& tenant_id,
                                                          absl::Time now) override;
  absl::StatusOr<std::vector<engine::TopupRecord>> Topups(const std::string& tenant_id,
                                                          absl::Time now) override;
  absl::StatusOr<std::vector<engine::FailOpenCharge>> PendingFailOpen(size_t max) override;
  absl::Status CheckWritable() override;
  bool KeepsJournalMarks() const override { return true; }
  absl::StatusOr<std::vector<engine::JournalMark>> JournalMarks() override;

  /// The writer's prepared statements (sqlite_store.cc); opaque outside it.
  struct WriteStatements;

 private:
  SqliteStore() = default;
  absl::Status WriteBatch(const engine::CommitBatch& batch);
  /// Records batch.applied_entries; kAlreadyExists when one is known.
  absl::Status WriteAppliedEntries(const engine::CommitBatch& batch);
  absl::Status WriteFailOpen(const engine::CommitBatch& batch);
  absl::Status WritePlanChanges(const engine::CommitBatch& batch);
  absl::Status WriteReservations(const engine::CommitBatch& batch);
  absl::Status WriteTopups(const engine::CommitBatch& batch);
  /// Usage deltas, the units given back (WriteGivenBack), then the period
  /// closes (WritePeriodCloses).
  absl::Status WriteUsage(const engine::CommitBatch& batch);
  absl::Status WriteGivenBack(const engine::CommitBatch& batch);
  absl::Status WritePeriodCloses(const engine::CommitBatch& batch);
  absl::Status WriteTenantsAndKeys(const engine::CommitBatch& batch);
  absl::Status WriteIdempotencyAndMessages(const engine::CommitBatch& batch);
  absl::Status WriteLeasesAndLimits(const engine::CommitBatch& batch);
  /// kFailedPrecondition when a transition's message is not in its `from`.
  absl::Status WriteMessageTransitions(const engine::CommitBatch& batch);
  absl::Status WriteAlertsAndEvents(const engine::CommitBatch& batch);
  // the outbox (sqlite_outbox.cc)
  absl::Status WriteOutbox(const engine::CommitBatch& batch);
  absl::Status WriteAttemptsAndRelayed(const engine::CommitBatch& batch);

  void RunCheckpoints();

  std::unique_ptr<Db> writer_;        // used by Commit only (single writer thread)
  std::unique_ptr<Db> checkpointer_;  // used by checkpoint_thread_ only
  Mutex checkpoint_mu_;
  bool stop_checkpoints_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  CondVar checkpoint_wake_;  // signalled when stop_checkpoints_ is set
  std::thread checkpoint_thread_;
  std::unique_ptr<WriteStatements> w_;
  std::string path_;  // the database file, for Load's second connection
  Mutex read_mu_;
  std::unique_ptr<Db> reader_ ABSL_GUARDED_BY(read_mu_);
};

}  // namespace quotum::store::sqlite
