// The facts of scale-out decisions on their way to the cold store. A shared
// ledger appends the facts of each decision that charges units or counts an
// api_call to a stream, in the same atomic step as the charge (RedisLedger:
// decide.lua's XADD); the FactsDrain reads them back through the FactsStream
// port and applies them to the Store, each entry once.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

/// The credits a decision's units cost (CreditsCheck): what the drain needs
/// to write them per channel and find the credits alerts they reached.
struct CreditsFacts {
  uint64_t per_unit = 0;
  std::optional<uint64_t> limit;
  std::vector<int> thresholds;
};

/// What the cold store keeps of one decision, known before it is made.
struct UsageFacts {
  std::string meter;  ///< the metered meter's name
  std::string channel;
  /// The request's period: the api_call's, and the units' unless late.
  absl::Time period_start;
  absl::Time at;          ///< the hour and day the units count in
  absl::Time now;         ///< the hour and day the api_call counts in
  uint64_t quantity = 0;  ///< units requested
  /// The messages of a send (MeterRequest::messages), written as
  /// AppendSendMessages says.
  std::vector<MessageRecord> messages;
  /// The limit the decision is held to (nullopt: unlimited), the period's
  /// end and the plan's alert thresholds: what the drain needs to turn the
  /// entry's counter_before and charge into alerts (engine/alerts.h).
  std::optional<uint64_t> limit;
  absl::Time period_end;
  std::vector<int> thresholds;
  /// A late event's units count in this closed period instead (unenforced).
  std::optional<absl::Time> late_period_start;
  /// Set when each unit also costs credits.
  std::optional<CreditsFacts> credits;
  /// See `messages`.
  bool queue_rest = false;
  /// A failed message's charge given back (SharedLedger::GiveBack): the
  /// entry's `charged` units of `meter` and `credits_given_back` credits are
  /// taken back out, at `at`. Nothing else is charged or counted.
  bool give_back = false;
};

/// A session, group or gauge change carried by an entry (lease.lua): what
/// the cold store must write for it.
struct LeaseChange {
  enum class Kind { kSession, kSessionDeleted, kGroup, kGroupDeleted, kGauge };
  Kind kind = Kind::kSession;
  /// kSession: the whole record; kSessionDeleted: tenant and id.
  SessionRecord session;
  /// kGroup: the whole record; kGroupDeleted: tenant and id.
  GroupRecord group;
  GaugeRecord gauge;  ///< kGauge
  /// A lease that ran out (session.lease_expired).
  std::optional<EventRecord> event;
  /// What the change is to: "s/<id>" for a session, "g/<id>" for a group,
  /// "v/<meter>" for a gauge. Two changes of one subject must be applied in
  /// order, so they never share a batch (the store writes a batch's upserts
  /// before its deletes).
  std::string Subject() const;
};

/// One appended entry, read back with what its decision did.
struct FactsEntry {
  std::string tenant_id;
  std::string stream_id;  ///< the entry's id within its tenant's stream
  UsageFacts facts;
  uint64_t charged = 0;             ///< units charged to facts.meter (given back: taken out)
  uint64_t credits_given_back = 0;  ///< facts.give_back: credits taken out
  bool api_call = false;            ///< one api_call was counted
  bool allowed = false;
  /// The meter's period counter before the charge (decide.lua's "b"); unset
  /// for entries that carry none (fail-open reconciliations, leases).
  std::optional<uint64_t> counter_before;
  /// The credits counter before the charge (decide.lua's "cb"), with
  /// facts.credits.
  std::optional<uint64_t> credits_before;
  /// With top-ups: the meter's (credits') limit judged, top-ups included
  /// (decide.lua's "tl", "ctl"), which alerts are reached against; and what
  /// the charge drew of them ("td": top-up id, units).
  std::optional<uint64_t> limit_judged;
  std::optional<uint64_t> credits_limit_judged;
  std::vector<std::pair<std::string, uint64_t>> topup_draws;
  /// Set when the entry records a session, group or gauge change.
  std::optional<LeaseChange> lease;

  /// Unique across tenants: "<tenant>/<stream id>" (CommitBatch::applied_entries).
  std::string Id() const { return tenant_id + "/" + stream_id; }
};

/// Adds the rows entry `e` makes to `b`: the charged units, the api_call,
/// the message, the alerts the charge reached and the lease change; not its
/// id. Pure.
void AppendRows(const FactsEntry& e, CommitBatch& b);

/// Where the facts wait for the drain: a stream per tenant with one consumer
/// group shared by every instance, so each entry is delivered to one of them
/// until it is acknowledged. Thread-compatible: one drain uses it.
class FactsStream {
 public:
  virtual ~FactsStream() = default;
  /// Entries of `tenants` never delivered to any consumer, oldest first per
  /// tenant, at most about `max` in all; they are now this consumer's until
  /// acknowledged. A tenant's stream and group are made on first use.
  virtual absl::StatusOr<std::vector<FactsEntry>> ReadNew(std::span<const std::string> tenants,
                                                          size_t max) = 0;
  /// Entries of `tenant` delivered but not acknowledged for at least
  /// `min_idle` (their consumer died or stalled), now this consumer's.
  virtual absl::StatusOr<std::vector<FactsEntry>> ClaimStale(const std::string& tenant,
                                                             absl::Duration min_idle,
                                                             size_t max) = 0;
  /// Acknowledges `entries` (applied) and removes them from their streams.
  virtual absl::Status Acknowledge(std::span<const FactsEntry> entries) = 0;
};

}  // namespace quotum::engine
