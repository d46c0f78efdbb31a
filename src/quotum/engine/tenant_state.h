#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "quotum/base/heap_optional.h"
#include "quotum/base/mutex.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/catalog.h"
#include "quotum/core/messaging_tier.h"
#include "quotum/core/recipient_window.h"
#include "quotum/engine/decision.h"
#include "quotum/engine/reservations.h"
#include "quotum/engine/store.h"
#include "quotum/ratelimit/limiter.h"
#include "quotum/ratelimit/rules.h"

namespace quotum::engine {

/// A remembered Idempotency-Key: the first decision, answered again on retry.
struct IdempotencyEntry {
  uint64_t fingerprint = 0;
  Decision decision;
  absl::Time created_at;
  /// False until the decision is durable (its journal record written, or
  /// its transaction committed).
  bool committed = false;
  /// Retries that arrived while the first was not yet committed; run (after
  /// the tenant's lock is released) once it is committed or undone.
  std::unique_ptr<std::vector<absl::AnyInvocable<void()>>> waiters;
};

/// A finite instant in 8 bytes, to the millisecond (absl::Time takes 16; a
/// million sessions hold four each). Converts both ways implicitly, so fields
/// of this type read like absl::Time. The infinite past and future do not
/// survive the round trip.
class CompactTime {
 public:
  CompactTime() = default;
  CompactTime(absl::Time t) : unix_ms_(absl::ToUnixMillis(t)) {}          // NOLINT: implicit
  operator absl::Time() const { return absl::FromUnixMillis(unix_ms_); }  // NOLINT: implicit

 private:
  int64_t unix_ms_ = 0;
};

/// The statuses a session can have, as static literals; "" for anything else.
/// SessionState::status always points at one of them.
absl::string_view SessionStatusLiteral(absl::string_view status);

/// A session's live state (see SessionRecord for the fields' meaning). Times
/// are kept to the millisecond; the store keeps seconds.
/// A session's messaging tier and the recipients it counts: made on the
/// first send a tier counts, and at start-up for sessions that have one.
struct SessionTier {
  TierLevel level;
  RecipientWindow window;
};

struct SessionState {
  std::string phone;
  absl::string_view status;  ///< a SessionStatusLiteral
  CompactTime created_at;
  CompactTime updated_at;
  std::optional<CompactTime> first_working_at;
  CompactTime last_heartbeat;
  int64_t warmup_day = -1;
  uint64_t warmup_count = 0;
  /// Shared so that a copy kept to undo a status change keeps the same tier.
  std::shared_ptr<SessionTier> tier;
  SessionTier& Tier() {
    if (!tier) tier = std::make_shared<SessionTier>();
    return *tier;
  }
};

struct GroupState {
  std::string name;
  /// To the millisecond (the store keeps seconds): 8 bytes, so a million
  /// one-group maps fit a smaller allocation.
  CompactTime created_at;
};

/// What a tenant's requests leave behind: idempotency keys and short-window
/// limiter state. Created on the tenant's first request.
struct TenantTraffic {
  absl::flat_hash_map<std::string, IdempotencyEntry> idempotency;
  /// Next idempotency-map size at which expired entries are swept.
  size_t idempotency_sweep_at = 64;
  /// Short-window limiter state per category (index), by key id or session id.
  /// In memory only: a restart starts every window afresh.
  std::array<absl::flat_hash_map<std::string, ratelimit::State>, ratelimit::kCategoryCount>
      rate_state;
  /// Reservations and the units they hold (persisted; loaded at start-up).
  Holds holds;
  /// Changes to the tenant's plan, limits, add-ons or top-ups made through
  /// this instance whose commit has not ended, and the engine's count of
  /// settled changes when the last one ended (Engine::GuardLocalChangeLocked).
  /// Scale-out: a read of the shared store that began before then may
  /// predate them, and is not applied to the tenant (Engine::AdoptTenant).
  uint32_t local_changes_in_flight = 0;
  uint64_t local_change_settled = 0;
};

/// A tenant's sessions and monitored groups, loaded at start-up. Created with
/// the first of either, apart from TenantTraffic: a million tenants with a
/// session each but no recent requests do not pay for limiter maps.
struct TenantLeases {
  absl::flat_hash_map<std::string, SessionState> sessions;
  absl::flat_hash_map<std::string, GroupState> groups;
  /// Earliest instant a working session's lease can expire (InfiniteFuture if none).
  absl::Time next_lease_expiry = absl::InfiniteFuture();
};

/// One tenant's hot state. Everything a decision reads or writes sits behind
/// `mu`, so two tenants never contend. Owned by the Engine; never freed while
/// the Engine lives, so pointers to it stay valid.
struct TenantState {
  explicit TenantState(std::string tenant_id) : id(std::move(tenant_id)) {}

  const std::string id;

  /// 4 bytes: a million tenants each hold one (std::mutex would take 40).
  mutable CompactMutex mu;
  /// False until the tenant's creation has committed; hidden until then.
  bool committed ABSL_GUARDED_BY(mu) = false;
  /// Records of this tenant in journal buffers, not yet with the store's
  /// writer (journal.h); raised under `mu`. Fits in the padding after
  /// `committed`.
  std::atomic<uint16_t> journaled{0};
  std::string name ABSL_GUARDED_BY(mu);
  const Plan* plan ABSL_GUARDED_BY(mu) = nullptr;
  /// The plan's rate-limit profile.
  const RateLimitProfile* profile ABSL_GUARDED_BY(mu) = nullptr;
  /// Whole seconds (as are created_at's), which CompactTime holds exactly.
  CompactTime subscription_start ABSL_GUARDED_BY(mu);
  CompactTime created_at ABSL_GUARDED_BY(mu);
  /// The period `used` refers to; moved forward lazily on first touch.
  BillingPeriod period ABSL_GUARDED_BY(mu);
  /// Per MeterId: counter value this period, or a gauge's current value.
  std::vector<uint64_t> used ABSL_GUARDED_BY(mu);
  /// Per MeterId: admin override replacing the plan's limit; empty when the
  /// tenant has none.
  std::vector<std::optional<uint64_t>> overrides ABSL_GUARDED_BY(mu);
  /// A downgrade waiting for the period's end (Touch applies it); on the
  /// heap, as few tenants have one.
  HeapOptional<SubscriptionChange> pending_plan ABSL_GUARDED_BY(mu);
  /// Add-ons that have not ended, oldest first (their units raise the limits).
  std::vector<AddonRecord> addons ABSL_GUARDED_BY(mu);
  /// Top-ups that had not expired when last looked at, oldest expiry first
  /// (embedded: with what is drawn of them; scale-out: the shared ledger
  /// keeps that).
  std::vector<TopupRecord> topups ABSL_GUARDED_BY(mu);
  /// Both created on first use, so an idle tenant costs a few hundred bytes.
  std::unique_ptr<TenantTraffic> traffic ABSL_GUARDED_BY(mu);
  std::unique_ptr<TenantLeases> leases ABSL_GUARDED_BY(mu);
  /// The tenant's request state, created if needed.
  TenantTraffic& Traffic() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!traffic) traffic = std::make_unique<TenantTraffic>();
    return *traffic;
  }
  /// The tenant's sessions and groups, created if needed.
  TenantLeases& Leases() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!leases) leases = std::make_unique<TenantLeases>();
    return *leases;
  }
};

}  // namespace quotum::engine
