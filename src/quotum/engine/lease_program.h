// Sessions, groups and the subscribers gauge in scale-out mode: one
// operation of a tenant, as plain data for a shared ledger to decide with its
// rate checks all or nothing (RedisLedger::RunLease), and what it answered.
// The embedded mode decides the same rules in memory (sessions.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "quotum/core/billing_period.h"
#include "quotum/engine/check_program.h"
#include "quotum/engine/decision.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

struct UsageFacts;

enum class LeaseOpKind {
  kCreateSession,   ///< `text` is the phone; the id must be new
  kSetStatus,       ///< `text` is the status; turning working takes a lease
  kHeartbeat,       ///< renews a working session's lease
  kDeleteSession,   ///< frees its lease
  kPollQr,          ///< rates and the api_call only
  kCreateGroup,     ///< `text` is the name; one more groups_active
  kDeleteGroup,     ///< one fewer groups_active
  kSetSubscribers,  ///< `value` is the gauge's new value
  kListSessions,    ///< read: every session (after expiring lapsed leases)
  kListGroups,      ///< read: every group
};

/// One operation. A lapsed lease (no heartbeat for lease_ttl) stops its
/// session, once, with a session.lease_expired event, before any operation
/// (reads included) is decided.
struct LeaseOp {
  LeaseOpKind kind = LeaseOpKind::kListSessions;
  absl::string_view tenant_id;
  absl::string_view id;    ///< the session or group
  absl::string_view text;  ///< phone, status or name (see LeaseOpKind)
  uint64_t value = 0;      ///< kSetSubscribers
  /// Decided with the operation; charged only when it is done.
  RateChecks rates;
  /// The gauge the operation raises (sessions_active, groups_active,
  /// subscribers): its effective limit (nullopt = unlimited) and shadow flag.
  std::optional<uint64_t> limit;
  bool shadow = false;
  absl::Duration lease_ttl = absl::Minutes(5);
  /// The period whose api_calls counter an operation counts in.
  BillingPeriod period;
  /// Appended with every change (its api_call row); must be set.
  const UsageFacts* api_call = nullptr;
};

/// What a lease operation did.
struct LeaseResult {
  enum class Outcome {
    kDone,
    kNotFound,       ///< no session or group with that id
    kExists,         ///< creating an id that exists
    kRefused,        ///< a rate check (`refused` >= 0) or the gauge's limit refused
    kNeedsBaseline,  ///< the ledger lacks the tenant's leases: give them, then retry
  };
  Outcome outcome = Outcome::kDone;
  RateOutcomes rates;
  int refused = -1;  ///< the first refusing rate check, -1 if none
  /// Bit i: rate check i refused in shadow mode.
  uint32_t rate_shadow_denied = 0;
  bool gauge_shadow_denied = false;
  /// The gauge's value after the operation (kSetStatus, groups,
  /// subscribers); before it when the gauge's limit refused it.
  uint64_t gauge = 0;
  /// The operation took one more of its gauge (a session started working,
  /// a group was made).
  bool raised = false;
  /// The soonest a working session's lease runs out (InfiniteFuture if none).
  absl::Time next_expiry = absl::InfiniteFuture();
  /// The session changed (or deleted, or polled), or every session read.
  std::vector<SessionRecord> sessions;
  /// The group made or deleted, or every group read.
  std::vector<GroupRecord> groups;
};

/// A tenant's gauges as a shared ledger holds them.
struct LeaseGauges {
  uint64_t sessions_active = 0;
  uint64_t groups_active = 0;
  uint64_t subscribers = 0;
};

/// What a shared ledger is given when it lost (or never had) a tenant's
/// leases: the cold store's sessions, groups and gauges.
struct LeaseBaseline {
  TenantLeaseRows rows;
  /// A working session's lease runs out this long after its last heartbeat.
  absl::Duration lease_ttl = absl::Minutes(5);
};

}  // namespace quotum::engine
