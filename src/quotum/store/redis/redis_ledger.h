// The scale-out Ledger: each CheckProgram is one EVALSHA of one generic Lua
// script (lua/decide.lua after the limiter library) that decides and charges
// every check atomically in Redis, so any number of instances sharing the
// Redis decide as one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "quotum/base/mutex.h"
#include "quotum/engine/ledger.h"
#include "quotum/store/redis/redis_connection.h"
#include "quotum/store/redis/redis_pipeline.h"

namespace quotum::store::redis {

struct RedisLedgerOptions {
  /// A decision not answered within client.command_timeout is a 503 store_unavailable.
  RedisClientOptions client;
  /// Connections kept open for synchronous calls; a call waits when all are busy.
  size_t pool_size = 8;
  /// Threads (each with one connection) that pipeline asynchronous decisions.
  int pipeline_workers = 2;
  absl::Duration idempotency_ttl = absl::Hours(24);
  /// How long a period's counters stay in Redis after the period ends.
  absl::Duration counter_retention = absl::Hours(24 * 62);
  /// Decide on Redis' clock (TIME), the same for every instance. Off: on the
  /// `now` passed to Execute (the golden vectors' fixed instants).
  bool redis_time = true;
};

/// The script body the ledger runs: the limiter library, then decide.lua.
std::string DecisionScript();

/// The body of RedisLedger::RunLease's script: the limiter library, then lease.lua.
std::string LeaseScript();

/// The Redis keys of program `p`, in the order decide.lua reads them. Every
/// key starts with the tenant's hash tag "{tenant}". Pure.
std::vector<std::string> DecisionKeys(const engine::CheckProgram& p);

class RedisLedger final : public engine::SharedLedger {
 public:
  /// Connects one connection (the rest on demand) and loads the script.
  static absl::StatusOr<std::unique_ptr<RedisLedger>> Connect(RedisLedgerOptions options);

  absl::StatusOr<engine::LedgerResult> Execute(const engine::CheckProgram& p,
                                               absl::Time now) override;
  absl::StatusOr<engine::LedgerResult> Replay(const engine::CheckProgram& p,
                                              absl::Time now) override;
  void ExecuteAsync(const engine::CheckProgram& p, absl::Time now, Done done) override;
  absl::StatusOr<std::vector<uint64_t>> Counters(absl::string_view tenant_id,
                                                 absl::Time period_start,
                                                 const std::vector<std::string>& meters) override;
  absl::Status Ping() override;
  absl::StatusOr<bool> Reconcile(const engine::FailOpenCharge& c) override;
  // A failed message's charge given back (redis_give_back.cc).
  absl::StatusOr<bool> GiveBack(const engine::GivenBackCharge& c) override;
  absl::StatusOr<std::optional<std::string>> GivenBackReason(absl::string_view tenant_id,
                                                             absl::string_view message_id) override;
  absl::StatusOr<std::vector<uint64_t>> TopupsDrawn(
      absl::string_view tenant_id,
      const std::vector<std::pair<std::string, std::string>>& topups) override;
  absl::Status RestoreTopups(absl::string_view tenant_id,
                             const std::vector<engine::TopupRecord>& topups) override;
  /// Where and how this ledger reaches Redis (for other clients of the same server).
  const RedisClientOptions& client_options() const { return opts_.client; }
  using engine::SharedLedger::SetBaseline;
  absl::Status SetBaseline(absl::string_view tenant_id, const BillingPeriod& period,
                           const std::vector<std::pair<std::string, uint64_t>>& values,
                           const engine::LeaseBaseline& leases) override;
  // Sessions, groups and gauges (redis_leases.cc).
  absl::StatusOr<engine::LeaseResult> RunLease(const engine::LeaseOp& op, absl::Time now) override;
  absl::StatusOr<engine::LeaseGauges> Gauges(absl::string_view tenant_id, absl::Time now) override;

 private:
  explicit RedisLedger(RedisLedgerOptions options);
  /// Runs the script in `mode` ("x" execute, "r" replay lookup).
  absl::StatusOr<engine::LedgerResult> Run(const engine::CheckProgram& p, absl::Time now,
                                           absl::string_view mode);
  /// Runs one command on a pooled connection; transport errors and error
  /// replies are 503 store_unavailable (or the reply's own status).
  absl::StatusOr<RedisReply> Call(std::span<const std::string_view> argv);

 public:
  absl::StatusOr<uint64_t> WarmupSent(absl::string_view tenant_id, absl::string_view session_id,
                                      absl::Time day_end) override;
  absl::StatusOr<TierState> TierOf(absl::string_view tenant_id, absl::string_view session_id,
                                   absl::Time now) override;

 private:
  std::vector<std::string> Arguments(const engine::CheckProgram& p, absl::Time now,
                                     absl::string_view mode) const;
  /// lease.lua's ARGV for `op`.
  std::vector<std::string> LeaseArguments(const engine::LeaseOp& op, absl::Time now) const;

  /// An idle connection, or a new one while fewer than pool_size exist;
  /// waits otherwise.
  absl::StatusOr<RedisConnection> Acquire();
  /// Returns a connection to the pool (a broken one is dropped).
  void Release(RedisConnection c);

  /// The EVALSHA command line of `p` in `mode`.
  std::vector<std::string> EvalShaCommand(const engine::CheckProgram& p, absl::Time now,
                                          absl::string_view mode) const;

  const RedisLedgerOptions opts_;
  const std::string script_;
  std::string sha_;
  const std::string lease_script_;
  std::string lease_sha_;
  std::unique_ptr<RedisPipeline> pipeline_;
  Mutex mu_;
  CondVar idle_cv_;
  std::vector<RedisConnection> idle_ ABSL_GUARDED_BY(mu_);
  size_t open_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace quotum::store::redis
