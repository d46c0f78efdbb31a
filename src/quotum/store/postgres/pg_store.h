#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "quotum/base/mutex.h"
#include "quotum/engine/store.h"
#include "quotum/store/postgres/pg_connection.h"

namespace quotum::store::postgres {

struct PgOptions {
  /// Where the database is: "host=... dbname=..." or a postgresql:// URL
  /// (libpq's syntax; its PG* environment variables fill in the rest).
  std::string conninfo;
  /// Connections for the read methods (and Load), opened as they are needed;
  /// Commit has its own. Six, so that the API's two read-pool threads
  /// waiting on a lock leave connections for the rest: the two probe threads
  /// (/metrics, /readyz), the two key-lookup threads, the engine's two
  /// blocking threads and the background work share them too, so this
  /// narrows the wait and does not rule it out.
  int reader_pool_size = 6;
  /// How long opening a connection may take (libpq's connect_timeout, whole
  /// seconds, unless `conninfo` sets it).
  absl::Duration connect_timeout = absl::Seconds(5);
};

/// A fixed-size set of reader connections, handed out one per call.
/// Thread-safe.
class PgReaderPool {
 public:
  PgReaderPool(std::string conninfo, int size, absl::Duration connect_timeout);
  ~PgReaderPool();

  /// Runs `work` on a live connection of its own (waiting for a free one,
  /// opening or reconnecting it as needed). When `work` fails because the
  /// connection was lost and `retry` is set, reconnects and runs it once
  /// more: only for work that may safely run twice.
  absl::Status With(absl::FunctionRef<absl::Status(PgConnection&)> work, bool retry);

 private:
  absl::StatusOr<std::unique_ptr<PgConnection>> Acquire();
  void Release(std::unique_ptr<PgConnection> conn);

  const std::string conninfo_;
  const absl::Duration connect_timeout_;
  Mutex mu_;
  CondVar freed_;
  std::vector<std::unique_ptr<PgConnection>> idle_ ABSL_GUARDED_BY(mu_);
  int unopened_ ABSL_GUARDED_BY(mu_);  ///< connections that may still be opened
};

/// The PostgreSQL store, for several Quotum instances on one database.
/// Open() migrates the schema (see migrations.h). Commit runs on the engine's
/// writer thread on its own connection, one transaction per batch with one
/// statement per record kind (array parameters, ON CONFLICT upserts); the
/// read methods and Load use a pool of reader connections and see only
/// committed data. A connection the server dropped (restart, failover) is
/// reopened on the next call: while the server is away calls fail with
/// kUnavailable, afterwards they work again without reopening the store.
class PgStore final : public engine::Store {
 public:
  static absl::StatusOr<std::unique_ptr<PgStore>> Open(const PgOptions& options);
  bool Shared() const override { return true; }
  absl::StatusOr<std::optional<engine::KeySnapshot>> FindKey(const std::string& hash) override;
  absl::StatusOr<std::optional<engine::KeySnapshot>> FindKeyById(
      const std::string& key_id) override;
  absl::StatusOr<std::optional<engine::KeySnapshot>> FindTenant(const std::string& id) override;
  absl::StatusOr<std::vector<engine::KeySnapshot>> AllTenants() override;
  ~PgStore() override;

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
  // messages and the queue (pg_messages.cc)
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
  absl::StatusOr<bool> HoldLease(const std::string& name, const std::string& holder,
                                 absl::Duration ttl) override;
  /// OK when the server answers and accepts writes (not a read-only standby).
  absl::Status CheckWritable() override;

 private:
  explicit PgStore(const PgOptions& options);
  /// The one key that `sql` (a kSelectKeyWhere statement with one
  /// parameter, `value`) finds, with its tenant; nullopt when none.
  absl::StatusOr<std::optional<engine::KeySnapshot>> FindKeyWhere(const char* sql,
                                                                  const PgParam& value);
  /// Commit's transaction on a live writer connection.
  absl::Status CommitOnce(const engine::CommitBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  /// A read (retried once on a fresh connection if the old one was lost).
  absl::Status Read(absl::FunctionRef<absl::Status(PgConnection&)> work);
  /// Every row of `sql`, a SELECT of the messages' columns (pg_messages.cc).
  absl::StatusOr<std::vector<engine::MessageRecord>> MessageRows(const std::string& sql,
                                                                 std::vector<PgParam> params);
  /// Every row of `sql` made into a T by `of` (pg_outbox.cc).
  template <typename T, typename Of>
  absl::StatusOr<std::vector<T>> Rows(const std::string& sql, std::vector<PgParam> params, Of of);

  Mutex write_mu_;  // Commit is single-threaded by contract; this makes it certain
  std::unique_ptr<PgConnection> writer_ ABSL_GUARDED_BY(write_mu_);
  PgReaderPool readers_;
};

}  // namespace quotum::store::postgres
