#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "quotum/core/catalog.h"
#include "quotum/core/clock.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/commit_queue.h"
#include "quotum/engine/decision.h"
#include "quotum/engine/store.h"
#include "quotum/engine/tenant_state.h"

namespace quotum::engine {

struct EngineOptions {
  const Catalog* catalog = nullptr;  ///< must outlive the engine
  absl::Duration idempotency_ttl = absl::Hours(24);
  std::string default_plan;
  /// Latest an event's `timestamp` may lie ahead of the clock.
  absl::Duration max_clock_skew = absl::Minutes(5);
};

/// Who is calling: resolved from an API key. Cheap to copy.
struct Principal {
  TenantState* tenant = nullptr;
  std::string key_id;
};

/// One metering request: charge `quantity` units of `meter` on `channel`.
struct MeterRequest {
  std::string meter;
  uint64_t quantity = 0;
  std::string channel;  ///< empty = the catalog's first channel
  bool partial = false;
  /// Check only: decide, charge nothing, remember nothing.
  bool dry_run = false;
  /// Empty = not idempotent. Scoped to the tenant.
  std::string idempotency_key;
  /// Names the operation (route) for the idempotency fingerprint, so that a
  /// key reused for a different request is refused.
  std::string operation;
  /// When the units were used (events); default now. Must lie in the
  /// current period and not in the future beyond the allowed skew.
  std::optional<absl::Time> at;
  /// Also count one api_call for this request in the same commit.
  bool count_api_call = true;
  /// Written in the same commit when every requested unit is admitted.
  std::optional<MessageRecord> message;
};

struct TenantSpec {
  std::string id;
  std::string name;
  std::string plan;  ///< empty = the default plan
  std::optional<absl::Time> subscription_start;
};

struct TenantView {
  std::string id;
  std::string name;
  std::string plan;
  absl::Time subscription_start;
  absl::Time created_at;
  BillingPeriod period;
  std::vector<std::optional<uint64_t>> overrides;
};

struct CreatedTenant {
  TenantView tenant;
  MintedKey key;
};

/// A tenant's usage now: the current period and every meter with its limit.
struct UsageView {
  TenantView tenant;
  const Plan* plan = nullptr;
  std::vector<uint64_t> used;                   ///< per MeterId
  std::vector<std::optional<uint64_t>> limits;  ///< effective, per MeterId
};

struct DayUsage {
  absl::CivilDay day;
  std::vector<uint64_t> values;  ///< per MeterId
};

struct PeriodUsage {
  BillingPeriod period;
  bool current = false;
  std::vector<uint64_t> values;  ///< per MeterId
};

/// The use cases: metering decisions, tenants and keys, usage reads.
/// Thread-safe. Every acknowledged change is committed through the
/// CommitQueue before its callback runs; callbacks run on the writer thread
/// (or inline when nothing needs committing) and must not block.
class Engine {
 public:
  template <typename T>
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;

  Engine(EngineOptions options, Store* store, const Clock* clock);
  ~Engine();

  /// Loads the store's snapshot into memory and starts the writer.
  absl::Status Start();
  /// Commits everything pending and stops the writer.
  void Stop();

  const Catalog& catalog() const { return *opts_.catalog; }
  const Clock& clock() const { return *clock_; }
  CommitQueue::Stats commit_stats() const { return queue_.stats(); }

  // ---- Authentication
  /// Resolves a tenant API key; Unauthenticated when unknown or revoked.
  absl::StatusOr<Principal> Authenticate(absl::string_view secret) const;

  // ---- Metering
  /// Atomic check-and-consume (or check only with dry_run). Denials are
  /// decisions, not errors; errors are bad input or an unavailable store.
  void Consume(const Principal& who, MeterRequest req, Callback<Decision> done);
  /// Counts one api_call without waiting for its commit (reads).
  void CountApiCall(const Principal& who);

  // ---- Reads
  UsageView CurrentUsage(const Principal& who);
  /// Days in [from, to], newest first, one entry per day even when empty.
  absl::StatusOr<std::vector<DayUsage>> Daily(const Principal& who, absl::CivilDay from,
                                              absl::CivilDay to);
  /// The current period and up to months-1 before it (not before the
  /// subscription started), newest first.
  absl::StatusOr<std::vector<PeriodUsage>> History(const Principal& who, int months);

  /// Units of `meter` per channel in the current period.
  absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> ChannelBreakdown(
      const Principal& who, absl::string_view meter);
  /// A message of the caller's tenant (NotFound for another tenant's).
  absl::StatusOr<MessageRecord> FindMessage(const Principal& who, absl::string_view id);

  // ---- Tenants and keys (admin)
  void CreateTenant(TenantSpec spec, Callback<CreatedTenant> done);
  std::vector<TenantView> ListTenants() const;
  absl::StatusOr<TenantView> GetTenant(absl::string_view id) const;
  void CreateKey(absl::string_view tenant_id, Callback<MintedKey> done);
  void RevokeKey(absl::string_view key_id, Callback<std::string> done);
  /// Sets (value) or clears (nullopt) per-meter limit overrides.
  void SetLimits(absl::string_view tenant_id,
                 std::vector<std::pair<std::string, std::optional<uint64_t>>> limits,
                 Callback<TenantView> done);

  /// OK when the store accepts writes.
  absl::Status Ready() const;

 private:
  struct KeyEntry {
    std::string key_id;
    TenantState* tenant = nullptr;
    bool revoked = false;
    bool committed = false;
  };

  TenantState* FindTenant(absl::string_view id) const;
  /// Moves the tenant's period forward if `now` left it (lazy rollover).
  void Touch(TenantState& t, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  std::optional<uint64_t> EffectiveLimit(const TenantState& t, MeterId m) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  TenantView ViewOf(const TenantState& t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  void SweepIdempotency(TenantState& t, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  absl::Status Validate(const MeterRequest& req, MeterId* meter) const;
  /// Decides under the tenant's lock. Returns what to run once the lock is
  /// released (a reply, or a failed enqueue's completion); empty when `done`
  /// has been handed to the commit queue.
  absl::AnyInvocable<void()> ConsumeLocked(TenantState& t, MeterId m, MeterRequest& req,
                                           Callback<Decision>& done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  void CountApiCallLocked(TenantState& t, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);

  EngineOptions opts_;
  Store* store_;
  const Clock* clock_;
  CommitQueue queue_;
  MeterId api_calls_meter_ = 0;

  mutable absl::Mutex registry_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<TenantState>> tenants_
      ABSL_GUARDED_BY(registry_mu_);
  std::vector<TenantState*> tenant_order_ ABSL_GUARDED_BY(registry_mu_);
  /// Tenants whose creation failed to commit; kept so stale pointers stay valid.
  std::vector<std::unique_ptr<TenantState>> retired_ ABSL_GUARDED_BY(registry_mu_);
  absl::flat_hash_map<std::string, KeyEntry> keys_by_hash_ ABSL_GUARDED_BY(registry_mu_);
  absl::flat_hash_map<std::string, std::string> hash_by_key_id_ ABSL_GUARDED_BY(registry_mu_);
};

/// Stable 64-bit FNV-1a hash (the idempotency fingerprint survives restarts).
uint64_t StableHash(absl::string_view data);

}  // namespace quotum::engine
