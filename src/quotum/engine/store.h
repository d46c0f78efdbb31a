#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/catalog.h"
#include "quotum/engine/decision.h"

namespace quotum::engine {

// ---- Records the engine persists. Meters and channels travel by name so a
// ---- store never depends on a catalog's MeterId numbering.

struct TenantRecord {
  std::string id;
  std::string name;
  std::string plan;
  absl::Time subscription_start;
  absl::Time created_at;
};

struct ApiKeyRecord {
  std::string key_id;
  std::string tenant_id;
  std::string hash;  ///< raw SHA-256 of the secret (32 bytes)
  absl::Time created_at;
  bool revoked = false;
};

/// A per-tenant limit override (enterprise); `limit` nullopt removes it.
struct LimitOverride {
  std::string tenant_id;
  std::string meter;
  std::optional<uint64_t> limit;
};

/// Units charged to a meter. `period_start` keys the period counter; `at`
/// places the units in their hourly and daily buckets.
struct UsageDelta {
  std::string tenant_id;
  std::string meter;
  std::string channel;  ///< empty when the meter has no channel dimension
  absl::Time period_start;
  absl::Time at;
  uint64_t quantity = 0;
};

struct IdempotencyRecord {
  std::string tenant_id;
  std::string key;
  uint64_t fingerprint = 0;
  Decision decision;
  absl::Time created_at;
};

/// A message sent, queued or scheduled through a session (SPEC §2
/// "Deferred delivery"). Instants are kept to the millisecond.
struct MessageRecord {
  std::string id;
  std::string tenant_id;
  std::string channel;
  std::string to;
  std::string text;
  /// queued | releasing (a releaser has claimed it) | released (charged,
  /// waiting for its hand-off to the provider) | sent | failed | cancelled
  std::string status;
  absl::Time created_at;
  std::string session_id;
  std::string type = "text";  ///< the message type its credits are priced by
  /// Scheduled: not released before this.
  std::optional<absl::Time> send_at;
  /// Queued: the instant its turn in the tenant's FIFO is taken from (the
  /// later of send_at and when it was queued); released: when its hand-off
  /// is due. With `seq`, the queue order.
  std::optional<absl::Time> due_at;
  /// Orders the messages queued by one request (a bulk's recipients).
  uint32_t seq = 0;
  /// Why it waits (queued) or failed: a machine code such as quota_exceeded.
  std::string reason;
  /// Releases refused after a claim; names the idempotency key of the next.
  uint32_t release_attempts = 0;
  /// Released: its session's messages rule already admitted it (a live
  /// send), so the hand-off to the provider is not paced again.
  bool paced = false;
  /// Hand-offs to the provider tried (the http provider's retries).
  uint32_t delivery_attempts = 0;
  std::optional<absl::Time> released_at;
  std::optional<absl::Time> sent_at;
  absl::Time updated_at;
};

/// A change of one message's status, applied only when the message is in
/// `from` (a cancel, a releaser's claim, a refused release going back).
struct MessageTransition {
  std::string tenant_id;
  std::string id;
  std::string from;
  std::string to;
  std::string reason;                     ///< replaces the stored reason
  absl::Time at;                          ///< becomes updated_at
  bool count_attempt = false;             ///< release_attempts + 1
  bool count_delivery = false;            ///< delivery_attempts + 1
  std::optional<absl::Time> sent_at;      ///< set when given
  std::optional<absl::Time> due_at;       ///< set when given
  std::optional<absl::Time> released_at;  ///< set when given (when it was charged)
};

/// Where a listing of messages goes on from: the last one listed.
struct MessageCursor {
  absl::Time created_at;
  std::string id;
};

/// A place in the queue's order (due_at, seq, id): where a page of
/// Store::DueMessages ended.
struct DuePosition {
  absl::Time due_at;
  uint32_t seq = 0;
  std::string id;
};

/// A messaging session (e.g. one connected WhatsApp number) of a tenant.
struct SessionRecord {
  std::string tenant_id;
  std::string id;
  std::string phone;
  std::string status;  ///< starting | scan_qr | working | stopped | failed
  absl::Time created_at;
  absl::Time updated_at;
  std::optional<absl::Time> first_working_at;
  absl::Time last_heartbeat;
  int64_t warmup_day = -1;  ///< warm-up day index the count below belongs to
  uint64_t warmup_count = 0;
  /// Its messaging tier (TierLevel): level, since and qualified (Unix ms).
  /// The recipients it counts are the released messages' (MessageRecord),
  /// read again at start-up.
  int64_t tier_level = 0;
  int64_t tier_since_ms = 0;
  int64_t tier_qualified_ms = 0;
};

struct GroupRecord {
  std::string tenant_id;
  std::string id;
  std::string name;
  absl::Time created_at;
};

/// Custom short-window limits of one API key; nullopt = the plan's profile.
struct KeyRateLimits {
  std::optional<uint32_t> general;
  std::optional<uint32_t> messages;
  std::optional<uint32_t> sessions;
  friend bool operator==(const KeyRateLimits&, const KeyRateLimits&) = default;
};

struct KeyRateLimitsRecord {
  std::string key_id;
  KeyRateLimits limits;
};

/// A gauge set to an absolute value (subscribers).
struct GaugeRecord {
  std::string tenant_id;
  std::string meter;
  uint64_t value = 0;
};

/// A tenant's sessions, groups and gauges as the cold store holds them.
struct TenantLeaseRows {
  std::vector<SessionRecord> sessions;
  std::vector<GroupRecord> groups;
  std::vector<GaugeRecord> gauges;
};

/// One typed field of an event beyond the common ones (a threshold's meter,
/// value, limit, ...). Names are fixed by the code that makes the event;
/// values never contain control characters.
struct EventField {
  EventField() = default;
  EventField(std::string name, std::string value, bool number = false, bool json = false)
      : name(std::move(name)), value(std::move(value)), number(number), json(json) {}
  std::string name;
  std::string value;    ///< text, or a decimal integer when `number`
  bool number = false;  ///< rendered as a JSON number
  /// `value` is compact JSON (an object or array), rendered as it is.
  bool json = false;
};

/// Something worth telling someone about (lease expired, threshold reached,
/// plan changed, ...). Stored in the commit of the change that caused it and
/// delivered from there (the outbox).
struct EventRecord {
  std::string tenant_id;
  std::string type;
  std::string subject;
  std::string detail;  ///< one human sentence
  absl::Time at;
  /// Unique across tenants ("evt_" + hex). Deterministic where a retry could
  /// make the event again (EventId), so a store keeps it once. Empty: the
  /// store gives it a random one.
  std::string id;
  std::vector<EventField> fields;
};

/// Scale-out, fail-open policy: units admitted unchecked while the shared
/// ledger (Redis) was unavailable. Kept in the cold store until reconciled
/// into the ledger, which then counts them and carries them to the reports
/// like any decision's (the facts stream).
struct FailOpenCharge {
  std::string id;  ///< unique across instances
  std::string tenant_id;
  std::string meter;
  std::string channel;
  absl::Time period_start;
  absl::Time period_end;
  absl::Time at;   ///< the units' hour and day
  absl::Time now;  ///< the api_call's hour and day
  uint64_t units = 0;
  bool api_call = false;
};

/// Scale-out: a failed message's charge given back (SPEC §2 "Delivery
/// provider"; DeliveryPolicy::give_back): `units` of `meter` and `credits`
/// credits taken back out of the period counters, and out of the reports'
/// hour and day of `at`, once per message however often it is asked.
struct GivenBackCharge {
  std::string message_id;
  std::string tenant_id;
  std::string meter;
  std::string channel;
  absl::Time period_start;
  absl::Time period_end;
  absl::Time at;   ///< when the units were charged (their hour and day)
  absl::Time now;  ///< when they are given back
  uint64_t units = 0;
  uint64_t credits = 0;
  std::string reason;  ///< why the message failed (kept with the once-mark)
};

/// Appends to `out` the rows a give-back takes out of the counters and
/// rollups (CommitBatch::given_back): the meter's units, and the credits they
/// cost; a row of 0 units is left out. `at` is when they were charged.
inline void AppendGivenBackRows(const std::string& tenant_id, const std::string& meter,
                                const std::string& channel, absl::Time period_start, absl::Time at,
                                uint64_t units, uint64_t credits, std::vector<UsageDelta>& out) {
  if (units > 0) out.push_back(UsageDelta{tenant_id, meter, channel, period_start, at, units});
  if (credits > 0) {
    out.push_back(
        UsageDelta{tenant_id, std::string(meters::kCredits), channel, period_start, at, credits});
  }
}

/// One change of a tenant's plan: a line of the subscription ledger.
struct SubscriptionChange {
  std::string id;  ///< unique
  std::string tenant_id;
  std::string actor;  ///< "tenant" or "admin"
  std::string from_plan;
  std::string to_plan;
  std::string kind;  ///< upgrade | downgrade | same
  /// Charged (negative: credited) for the rest of the period when applied.
  int64_t amount_cents = 0;
  absl::Time requested_at;
  /// When it applies (applied: when it did).
  absl::Time effective_at;
  std::string state;  ///< pending | applied | cancelled
};

/// A recurring add-on pack of a tenant: `units` more of `meter` in every
/// period from `started_at` until `ends_at`.
struct AddonRecord {
  std::string id;  ///< unique
  std::string tenant_id;
  std::string meter;
  uint64_t units = 0;
  int64_t price_cents = 0;  ///< per period
  absl::Time started_at;
  /// Set when cancelled: the end of the period it was cancelled in.
  std::optional<absl::Time> ends_at;
};

/// A usage threshold reached: at most one per tenant, meter, period and
/// threshold (the store keeps the first and ignores the others).
struct AlertRecord {
  std::string tenant_id;
  std::string meter;
  absl::Time period_start;
  absl::Time period_end;
  int threshold = 0;   ///< percent of the limit
  uint64_t value = 0;  ///< the counter after the decision that crossed it
  uint64_t limit = 0;  ///< the limit that decision was held to
  absl::Time at;
  /// When it stopped holding because the limit grew (usage.threshold_resolved).
  std::optional<absl::Time> resolved_at;
};

/// A tenant's webhook endpoint.
struct WebhookRecord {
  std::string id;  ///< unique
  std::string tenant_id;
  std::string url;
  /// Event types delivered to it; {"*"} = every type.
  std::vector<std::string> events;
  std::string secret;  ///< the HMAC key its deliveries are signed with
  absl::Time created_at;
  std::optional<absl::Time> deleted_at;  ///< set: nothing more is delivered
};

/// One event on its way to one webhook. A webhook's deliveries go out one at
/// a time, oldest first: the next waits until this one is delivered or dead.
struct DeliveryRecord {
  std::string id;  ///< unique
  std::string webhook_id;
  std::string tenant_id;
  std::string event_id;
  std::string state;  ///< pending | delivered | dead
  int attempts = 0;   ///< every attempt made, retries included
  /// `attempts` when an admin last sent it again: the relay gives it
  /// max_attempts after that.
  int budget_from = 0;
  absl::Time next_at;   ///< pending: when the next attempt may run (kept to the millisecond)
  int last_status = 0;  ///< the last attempt's HTTP status; 0 = no answer
  std::string last_error;
  absl::Time created_at;
  std::optional<absl::Time> finished_at;  ///< delivered or dead
};

/// One attempt at a delivery.
struct AttemptRecord {
  std::string delivery_id;
  int attempt = 0;  ///< 1 for the first
  absl::Time at;
  int status = 0;  ///< HTTP status; 0 = no answer
  std::string error;
  int64_t took_ms = 0;
};

/// Units of a counter meter held by a reservation until it is committed,
/// released or expires (embedded mode; scale-out keeps them in Redis).
struct ReservationRecord {
  std::string tenant_id;
  std::string id;  ///< "rsv_..." (reservations.h), unique per tenant
  std::string meter;
  uint64_t units = 0;
  absl::Time created_at;
  absl::Time expires_at;
};

/// A one-off prepaid pack of a tenant (SPEC §1 "top-up"): `units` more of
/// `meter`, used after the limit's units (oldest expiry first) until
/// `expires_at`; they outlive period resets. `drawn` of them are used.
struct TopupRecord {
  std::string id;  ///< "top_..." unique
  std::string tenant_id;
  std::string meter;
  uint64_t units = 0;
  uint64_t drawn = 0;
  int64_t price_cents = 0;
  absl::Time bought_at;
  /// When the unused units lapse; InfiniteFuture when never.
  absl::Time expires_at = absl::InfiniteFuture();
  uint64_t Left() const { return units > drawn ? units - drawn : 0; }
};

/// Units a decision used of one top-up (added to its `drawn`).
struct TopupDraw {
  std::string tenant_id;
  std::string id;
  uint64_t units = 0;
};

/// One period counter's value.
struct CounterRow {
  std::string tenant_id;
  std::string meter;
  absl::Time period_start;
  uint64_t value = 0;
};

/// The close of one tenant's billing period: its counter rows move into
/// usage_aggregates (adding to a row already there, so a row that arrives
/// after the close is folded in by the next one), with the plan and limits
/// of the period; the period leaves the counters table (and start-up).
struct PeriodClose {
  std::string tenant_id;
  BillingPeriod period;
  std::string plan;
  /// Per meter name, the period's effective limit; meters left out (or
  /// unlimited) are stored without one.
  std::vector<std::pair<std::string, uint64_t>> limits;
  absl::Time closed_at;
};

/// How far one journal (journal.h) has been folded into the store: its
/// records up to `seq` are in it.
struct JournalMark {
  uint32_t journal = 0;
  uint64_t seq = 0;
};

/// Everything one group commit writes, atomically.
struct CommitBatch {
  std::vector<TenantRecord> tenants;
  std::vector<ApiKeyRecord> keys;
  std::vector<std::string> revoked_key_ids;
  std::vector<LimitOverride> overrides;
  /// Absolute values of period counters (the reconciliation's repair),
  /// written before this batch's usage is added.
  std::vector<CounterRow> counter_sets;
  std::vector<UsageDelta> usage;
  /// Units taken back out (a failed message's charge given back), after
  /// `usage`: each lowers its counter, hour and day by its quantity, never
  /// below 0, and never makes a row that does not exist.
  std::vector<UsageDelta> given_back;
  /// Written after this batch's usage.
  std::vector<PeriodClose> period_closes;
  std::vector<IdempotencyRecord> idempotency;
  /// Upserts by id. A known message changes (status, reason, release and
  /// sent instants, updated_at, due_at) only while queued or releasing, and
  /// never back to queued (a queued record only inserts).
  std::vector<MessageRecord> messages;
  /// Applied after `messages`. A transition whose message is not in its
  /// `from` state refuses the whole batch with kFailedPrecondition (commit
  /// transitions alone: CommitQueue::CommitAlone).
  std::vector<MessageTransition> message_transitions;
  std::vector<SessionRecord> sessions;                                ///< upserts
  std::vector<std::pair<std::string, std::string>> deleted_sessions;  ///< (tenant, id)
  std::vector<GroupRecord> groups;                                    ///< inserts
  std::vector<std::pair<std::string, std::string>> deleted_groups;    ///< (tenant, id)
  std::vector<KeyRateLimitsRecord> key_rate_limits;                   ///< upserts
  std::vector<GaugeRecord> gauges;                                    ///< absolute values
  std::vector<EventRecord> events;
  /// Ids of the shared ledger's stream entries this batch applies (the facts
  /// drain, scale-out). The store records each id with the batch; a batch
  /// naming an id it has recorded before is refused whole with
  /// kAlreadyExists, so an entry delivered twice is applied once. Ids are
  /// kept for at least kAppliedEntryRetention.
  std::vector<std::string> applied_entries;
  std::vector<FailOpenCharge> fail_open;          ///< inserts
  std::vector<std::string> reconciled_fail_open;  ///< ids deleted
  /// Upserts by id; an applied change also sets its tenant's plan.
  std::vector<SubscriptionChange> subscription_changes;
  std::vector<AddonRecord> addons;  ///< upserts by id
  std::vector<TopupRecord> topups;  ///< inserts (a known id is left alone)
  /// Added to the named top-ups' drawn (never past their units); after
  /// this batch's top-up inserts.
  std::vector<TopupDraw> topup_draws;
  /// Inserts; each also deletes its tenant's reservations expired at its
  /// created_at (they were given back, and nothing refers to them).
  std::vector<ReservationRecord> reservations;
  std::vector<std::pair<std::string, std::string>> ended_reservations;  ///< (tenant, id) deleted
  /// Inserted unless the store holds one of the same tenant, meter, period
  /// and threshold; resolved_at is ignored.
  std::vector<AlertRecord> alerts;
  /// Sets resolved_at (from each record) on the stored alert with its key
  /// when it has none.
  std::vector<AlertRecord> resolved_alerts;
  std::vector<WebhookRecord> webhooks;  ///< upserts by id (deleted_at is what changes)
  /// Upserts by id; a new delivery of a (webhook, event) that has one already
  /// is ignored.
  std::vector<DeliveryRecord> deliveries;
  std::vector<AttemptRecord> attempts;      ///< inserts
  std::vector<std::string> relayed_events;  ///< event ids the relay has fanned out
  /// Raised (never lowered) in the same transaction as the rest: the journal
  /// records this batch folds in. Only the embedded store keeps them.
  std::vector<JournalMark> journal_marks;
  bool empty() const {
    return usage.empty() && idempotency.empty() && topup_draws.empty() && alerts.empty() &&
           HoldsOnlyJournalKinds();
  }
  /// Nothing but usage, idempotency records, top-up draws and alerts: the
  /// kinds that commute, which a journal record may carry (journal_codec.h).
  bool HoldsOnlyJournalKinds() const {
    return tenants.empty() && keys.empty() && revoked_key_ids.empty() && overrides.empty() &&
           counter_sets.empty() && given_back.empty() && period_closes.empty() &&
           messages.empty() && message_transitions.empty() && sessions.empty() &&
           deleted_sessions.empty() && groups.empty() && deleted_groups.empty() &&
           key_rate_limits.empty() && gauges.empty() && events.empty() && applied_entries.empty() &&
           fail_open.empty() && reconciled_fail_open.empty() && subscription_changes.empty() &&
           addons.empty() && topups.empty() && reservations.empty() && ended_reservations.empty() &&
           resolved_alerts.empty() && webhooks.empty() && deliveries.empty() && attempts.empty() &&
           relayed_events.empty() && journal_marks.empty();
  }
};

/// How long a store remembers an applied entry id: far longer than an entry
/// can wait unacknowledged in the stream.
inline constexpr absl::Duration kAppliedEntryRetention = absl::Hours(24 * 7);

/// State needed to rebuild the engine's memory at start-up.
/// Receives the start-up snapshot one record at a time, each lent for the call
/// (the sink may move from it). Streaming keeps start-up from holding a second
/// copy of every tenant in memory. Order: Sizes, the tenants, TenantsLoaded;
/// then two groups, each in its own order, which a store may send side by side
/// from two threads (one call at a time within a group):
///  - usage: overrides, counters (the rows of one tenant together),
///    idempotency records, groups, gauges, reservations;
///  - keys and sessions: keys, sessions, key rate limits.
/// Apart from a tenant's own state (its gauges and leases, which both groups
/// change, under the tenant's lock), the groups touch disjoint state. The
/// split evens out the work: with 1 M tenants each group takes about half of
/// what follows the tenants.
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;
  /// Row counts for reserving, sent first.
  virtual void Sizes(size_t tenants, size_t keys) = 0;
  /// A non-OK status stops the load, and Load returns it.
  virtual absl::Status Tenant(TenantRecord& r) = 0;
  /// Sent once, after the last tenant and before either group.
  virtual void TenantsLoaded() {}
  virtual void Key(ApiKeyRecord& r) = 0;
  virtual void Override(LimitOverride& r) = 0;
  /// A counter row of any period, a tenant's rows together (the engine keeps
  /// the ones of the tenant's current period).
  virtual void Counter(CounterRow& r) = 0;
  virtual void Idempotency(IdempotencyRecord& r) = 0;
  virtual void Session(SessionRecord& r) = 0;
  virtual void Group(GroupRecord& r) = 0;
  virtual void KeyRateLimits(KeyRateLimitsRecord& r) = 0;
  virtual void Gauge(GaugeRecord& r) = 0;
  /// A reservation, sent last; the store may send expired ones too.
  virtual void Reservation(ReservationRecord& r) {}
};

/// One day's units of one meter (summed over channels).
struct DailyRow {
  absl::CivilDay day;
  std::string meter;
  uint64_t value = 0;
};

/// One hour's units of one meter on one channel.
struct HourlyRow {
  absl::Time hour;  ///< the hour's start (UTC, a whole hour)
  std::string meter;
  std::string channel;  ///< empty when the meter has no channel dimension
  uint64_t value = 0;
};

/// One day's units of one meter on one channel.
struct DailyChannelRow {
  absl::CivilDay day;  ///< UTC
  std::string meter;
  std::string channel;  ///< empty when the meter has no channel dimension
  uint64_t value = 0;
};

/// One API key as the cold store holds it now, with everything an instance
/// needs to serve it: what another instance made or changed reaches this one
/// through it.
struct KeySnapshot {
  ApiKeyRecord key;
  KeyRateLimits limits;
  TenantRecord tenant;
  /// The tenant's limit overrides (limit always set).
  std::vector<LimitOverride> overrides;
  /// The tenant's pending plan change, if any.
  std::optional<SubscriptionChange> pending_plan;
  /// The tenant's add-ons that have not ended.
  std::vector<AddonRecord> addons;
  /// The tenant's top-ups that have not expired.
  std::vector<TopupRecord> topups;
};

/// The persistence port. Commit is called from one writer thread only; the
/// read methods may be called concurrently from any thread.
class Store {
 public:
  virtual ~Store() = default;

  /// Streams the start-up snapshot into `sink`; idempotency records older than
  /// `idempotency_since` are skipped (and may be purged).
  virtual absl::Status Load(absl::Time idempotency_since, SnapshotSink& sink) = 0;

  /// Writes the whole batch in one transaction: all of it or none of it.
  virtual absl::Status Commit(const CommitBatch& batch) = 0;

  /// Daily totals per meter for days in [from, to], summed over channels.
  virtual absl::StatusOr<std::vector<DailyRow>> Daily(const std::string& tenant_id,
                                                      absl::CivilDay from, absl::CivilDay to) = 0;

  /// Hourly rows of one tenant for the hours starting in [from, to), every
  /// meter and channel, ordered by hour, meter, channel (byte order). Rows
  /// with value 0 may be absent.
  virtual absl::StatusOr<std::vector<HourlyRow>> Hourly(const std::string& tenant_id,
                                                        absl::Time from, absl::Time to) = 0;

  /// Daily rows of one tenant for days in [from, to], per meter and channel,
  /// ordered by day, meter, channel (byte order). Rows with value 0 may be absent.
  virtual absl::StatusOr<std::vector<DailyChannelRow>> DailyByChannel(const std::string& tenant_id,
                                                                      absl::CivilDay from,
                                                                      absl::CivilDay to) = 0;

  /// Period counters of one tenant with period_start >= since, all meters:
  /// the counters of open periods and the aggregates of closed ones (a
  /// period's value is the sum of both while a late row waits to be folded).
  virtual absl::StatusOr<std::vector<CounterRow>> Periods(const std::string& tenant_id,
                                                          absl::Time since) = 0;

  /// Units per channel of one meter within [from, to).
  virtual absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> Channels(
      const std::string& tenant_id, const std::string& meter, absl::Time from, absl::Time to) = 0;

  virtual absl::StatusOr<std::optional<MessageRecord>> FindMessage(const std::string& tenant_id,
                                                                   const std::string& id) = 0;
  /// One tenant's messages oldest first (created_at, then id), those with
  /// `status` only unless it is empty, after `after` when given, at most `limit`.
  virtual absl::StatusOr<std::vector<MessageRecord>> Messages(
      const std::string& tenant_id, const std::string& status,
      const std::optional<MessageCursor>& after, size_t limit) = 0;
  /// What a releaser may take, every tenant's: messages queued or released
  /// with due_at <= now, and messages left releasing since before `stale` (a
  /// releaser that died); the first `per_session` released and the first
  /// `per_session` others of each tenant's session, in queue order (due_at,
  /// seq, id), after `after` when given, at most `limit` in all.
  virtual absl::StatusOr<std::vector<MessageRecord>> DueMessages(
      absl::Time now, absl::Time stale, size_t per_session, size_t limit,
      const std::optional<DuePosition>& after) = 0;
  /// Every message sent through a session and released (charged) after
  /// `since`, oldest release first, given to `each` (the messaging tiers'
  /// recipients, read again at start-up). Only its tenant_id, session_id,
  /// to, channel, type and released_at are set.
  virtual absl::Status RecentSends(absl::Time since,
                                   absl::FunctionRef<void(const MessageRecord&)> each) = 0;

  /// Recorded events of one tenant, newest first, at most `limit`.
  virtual absl::StatusOr<std::vector<EventRecord>> Events(const std::string& tenant_id,
                                                          size_t limit) = 0;

  /// One tenant's alerts reached in [from, to), oldest first.
  virtual absl::StatusOr<std::vector<AlertRecord>> Alerts(const std::string& tenant_id,
                                                          absl::Time from, absl::Time to) = 0;

  // ---- The outbox (webhooks)
  /// Webhooks not deleted, of one tenant (every tenant's when empty), oldest first.
  virtual absl::StatusOr<std::vector<WebhookRecord>> Webhooks(const std::string& tenant_id) = 0;
  /// Events not yet fanned out to webhooks, oldest first, at most `max`.
  virtual absl::StatusOr<std::vector<EventRecord>> UnrelayedEvents(size_t max) = 0;
  virtual absl::StatusOr<std::optional<EventRecord>> FindEvent(const std::string& id) = 0;
  /// The oldest pending delivery of each webhook whose turn has come
  /// (next_at <= now), oldest first, at most `max`. A webhook whose oldest
  /// pending delivery waits has none here: its later ones wait behind it.
  virtual absl::StatusOr<std::vector<DeliveryRecord>> NextDeliveries(absl::Time now,
                                                                     size_t max) = 0;
  /// One webhook's deliveries, newest first, at most `limit`.
  virtual absl::StatusOr<std::vector<DeliveryRecord>> Deliveries(const std::string& webhook_id,
                                                                 size_t limit) = 0;
  virtual absl::StatusOr<std::optional<DeliveryRecord>> FindDelivery(const std::string& id) = 0;
  /// A delivery's attempts, oldest first.
  virtual absl::StatusOr<std::vector<AttemptRecord>> Attempts(const std::string& delivery_id) = 0;
  /// Events not yet fanned out plus deliveries pending.
  virtual absl::StatusOr<uint64_t> OutboxBacklog() = 0;

  /// One tenant's sessions, groups and gauges (scale-out: what a shared
  /// ledger that lost them is given back).
  virtual absl::StatusOr<TenantLeaseRows> LeaseRows(const std::string& tenant_id) = 0;

  /// One tenant's subscription ledger, newest first.
  virtual absl::StatusOr<std::vector<SubscriptionChange>> SubscriptionChanges(
      const std::string& tenant_id) = 0;
  /// Every tenant's pending plan change (at most one each).
  virtual absl::StatusOr<std::vector<SubscriptionChange>> PendingPlanChanges() = 0;
  /// Add-ons that have not ended at `now` (every tenant's when `tenant_id`
  /// is empty), oldest first.
  virtual absl::StatusOr<std::vector<AddonRecord>> Addons(const std::string& tenant_id,
                                                          absl::Time now) = 0;
  /// Top-ups that have not expired at `now` (every tenant's when
  /// `tenant_id` is empty), by tenant, then expiry, then id.
  virtual absl::StatusOr<std::vector<TopupRecord>> Topups(const std::string& tenant_id,
                                                          absl::Time now) = 0;

  /// The ids of every tenant, in id order.
  virtual absl::StatusOr<std::vector<std::string>> TenantIds() = 0;

  /// (tenant, period_start) of every period with counter rows that started
  /// before `before`: the candidates for a PeriodClose.
  virtual absl::StatusOr<std::vector<std::pair<std::string, absl::Time>>> OpenPeriods(
      absl::Time before) = 0;

  /// Fail-open charges not yet reconciled, oldest first, at most `max`.
  virtual absl::StatusOr<std::vector<FailOpenCharge>> PendingFailOpen(size_t max) = 0;

  /// OK when the store accepts writes.
  virtual absl::Status CheckWritable() = 0;
  /// True when the store keeps CommitBatch::journal_marks: only then may
  /// the engine acknowledge from journals (journal.h), since a replay must
  /// know what the store already holds.
  virtual bool KeepsJournalMarks() const { return false; }
  /// How far each journal has been folded in; none for a store that does
  /// not keep journal marks.
  virtual absl::StatusOr<std::vector<JournalMark>> JournalMarks() {
    return std::vector<JournalMark>{};
  }
  /// True when several instances share this store (their engines then read
  /// keys through FindKey instead of trusting the start-up snapshot alone).
  virtual bool Shared() const { return false; }
  /// The key whose SHA-256 is `hash` (raw 32 bytes), with its tenant;
  /// nullopt when unknown. Shared stores implement it.
  virtual absl::StatusOr<std::optional<KeySnapshot>> FindKey(const std::string& hash) {
    return absl::UnimplementedError("this store is not shared by several instances");
  }
  /// The key `key_id`, as FindKey finds a key by its hash.
  virtual absl::StatusOr<std::optional<KeySnapshot>> FindKeyById(const std::string& key_id) {
    return absl::UnimplementedError("this store is not shared by several instances");
  }
  /// The tenant `id` as the cold store holds it now (`key` left empty);
  /// nullopt when unknown. Shared stores implement it.
  virtual absl::StatusOr<std::optional<KeySnapshot>> FindTenant(const std::string& id) {
    return absl::UnimplementedError("this store is not shared by several instances");
  }
  /// Every tenant as FindTenant finds it, in id order, read in a few
  /// statements rather than one round of them per tenant. Shared stores
  /// implement it.
  virtual absl::StatusOr<std::vector<KeySnapshot>> AllTenants() {
    return absl::UnimplementedError("this store is not shared by several instances");
  }
  /// Takes or renews the lease `name` for `holder` until `ttl` from now (on
  /// the store's clock): true when `holder` holds it now, false while another
  /// holder's lease runs. Work that must run once across the instances
  /// sharing the store runs only while its lease is held; a holder that dies
  /// loses it after `ttl`. A store not shared by several instances has one
  /// instance: always true.
  virtual absl::StatusOr<bool> HoldLease(const std::string& name, const std::string& holder,
                                         absl::Duration ttl) {
    return true;
  }
};

}  // namespace quotum::engine
