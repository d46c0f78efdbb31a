#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/types/span.h"
#include "quotum/base/mutex.h"
#include "quotum/base/task_pool.h"
#include "quotum/core/catalog.h"
#include "quotum/core/clock.h"
#include "quotum/core/forecast.h"
#include "quotum/core/plan_change.h"
#include "quotum/core/quota.h"
#include "quotum/core/reconcile.h"
#include "quotum/core/schedule.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/check_program.h"
#include "quotum/engine/commit_queue.h"
#include "quotum/engine/decision.h"
#include "quotum/engine/delivery.h"
#include "quotum/engine/engine_stats.h"
#include "quotum/engine/facts_drain.h"
#include "quotum/engine/journal.h"
#include "quotum/engine/lease_program.h"
#include "quotum/engine/memory_ledger.h"
#include "quotum/engine/store.h"
#include "quotum/engine/tenant_arena.h"
#include "quotum/engine/tenant_risk.h"
#include "quotum/engine/tenant_state.h"

namespace quotum::engine {

struct EngineOptions {
  const Catalog* catalog = nullptr;  ///< must outlive the engine
  /// Webhooks a tenant may have at once.
  size_t max_webhooks_per_tenant = 10;
  /// How often the forecasts are checked for usage.forecast_exceeds_limit.
  absl::Duration forecast_every = absl::Minutes(10);
  /// Reconciliation: a drift above this percentage is flagged.
  int reconcile_flag_percent = 5;
  absl::Duration idempotency_ttl = absl::Hours(24);
  std::string default_plan;
  /// How long after a billing period's end an event timestamped in it is
  /// still counted in it, unenforced (a late event).
  absl::Duration late_event_grace = absl::Hours(1);
  /// Latest an event's `timestamp` may lie ahead of the clock.
  absl::Duration max_clock_skew = absl::Minutes(5);
  /// Algorithm, window and shadow flag per short-window category.
  ratelimit::RuleSet rate_rules = ratelimit::RuleSet::Defaults();
  /// A working session without a heartbeat for this long stops counting.
  absl::Duration session_lease_ttl = absl::Minutes(5);
  /// Scale-out mode: metering decisions are executed by this ledger (Redis),
  /// shared with every other instance, instead of in memory. Must outlive
  /// the engine; null = embedded mode.
  SharedLedger* shared_ledger = nullptr;
  /// Scale-out mode (required with shared_ledger): the stream the shared
  /// ledger appends decisions' facts to; the engine drains it into the store.
  FactsStream* facts_stream = nullptr;
  FactsDrainOptions facts_drain;
  /// Names this instance among those sharing the store (leases' holder).
  std::string instance_name = "quotum";
  /// Hands released messages over; null = the `log` provider (accepted, so
  /// sent). Must outlive the engine.
  DeliveryProvider* delivery = nullptr;
  DeliveryPolicy delivery_policy;
  /// Scale-out: while the shared ledger is unavailable, admit metering
  /// unchecked and record it for reconciliation (fail_open.cc) instead of
  /// refusing it with 503.
  bool fail_open = false;
  /// Embedded mode: per-I/O-thread journals (journal.h) when count > 0 and
  /// dir is set; an I/O thread binds one with BindJournal.
  JournalOptions journal;
};

/// Who is calling: resolved from an API key. Cheap to copy.
struct Principal {
  TenantState* tenant = nullptr;
  std::string key_id;
  /// The key's custom short-window limits, as of authentication.
  KeyRateLimits limits;
};

/// One metering request: charge `quantity` units of `meter` on `channel`.
struct MeterRequest {
  std::string meter;
  uint64_t quantity = 0;
  std::string channel;  ///< empty = the catalog's first channel
  /// What a message costs in credits (messages_sent only).
  MessageType type = MessageType::kText;
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
  /// Messages written in the decision's commit (send_messages.h): the first
  /// as many as units are charged; with queue_rest the others as queued.
  std::vector<MessageRecord> messages;
  bool queue_rest = false;
  /// A send whose session's messages rule paces its hand-off to the
  /// provider instead of refusing it here (bulk and queued sends).
  bool paced_later = false;
  /// Never admitted unchecked under the fail-open policy (a release of a
  /// queued message waits for the ledger instead).
  bool no_fail_open = false;
  /// Sending through this session: it must be working; its `messages` rule
  /// and warm-up cap apply to messages_sent.
  std::string session_id;
  /// A reservation operation instead of a plain charge (HoldCheck):
  /// reserve `quantity` units for `hold_ttl`, commit `quantity` units of
  /// reservation `hold_id`, or release it (quantity 0).
  std::optional<HoldCheck::Op> hold;
  std::string hold_id;
  absl::Duration hold_ttl;
};

/// A send to hold for later (message_queue.cc): scheduled for `send_at`,
/// or queued at the limit (send_at nullopt: as soon as it can go).
struct HeldSend {
  std::string session_id;
  std::string to;
  std::string text;
  std::string channel;  ///< empty = the catalog's first channel
  MessageType type = MessageType::kText;
  std::optional<absl::Time> send_at;
  /// Why it waits: "scheduled", or the machine code of the refusal.
  std::string reason;
  /// Empty = a new random id.
  std::string id;
};

/// One page of a tenant's messages, oldest first.
struct MessagePage {
  std::vector<MessageRecord> messages;
  /// Where the next page starts; nullopt on the last page.
  std::optional<MessageCursor> next;
};

/// What one attempt at releasing a queued message came to (ReleaseMessage).
struct ReleaseOutcome {
  enum class Kind : uint8_t {
    kSent,        ///< charged, and handed to the provider (log: sent)
    kReleased,    ///< charged; its hand-off waits (the caller asked for none)
    kNoCapacity,  ///< the tenant's quota or credits refused it: wait for capacity
    /// The session cannot take it yet (its warm-up cap; not working): its
    /// messages wait `retry`.
    kSessionWaits,
    /// Charged, but the session's messages rule holds its hand-off: the
    /// session's released messages wait `retry`.
    kHandOffPaced,
    kFailed,  ///< it can never go (its session was deleted): marked failed
    kGone,    ///< no longer queued (cancelled, or taken by another releaser)
  };
  Kind kind = Kind::kGone;
  absl::Duration retry;
};

/// A decision plus the resource it produced when allowed.
template <typename T>
struct Admitted {
  Decision decision;
  std::optional<T> value;
};

struct SessionView {
  std::string id;
  std::string phone;
  std::string status;
  absl::Time created_at;
  absl::Time updated_at;
  std::optional<absl::Time> first_working_at;
  absl::Time last_heartbeat;
  /// When a working session stops counting without another heartbeat.
  std::optional<absl::Time> lease_expires_at;
  /// Today's warm-up cap and sends (when the plan has warm-up).
  std::optional<uint64_t> warmup_cap;
  uint64_t warmup_sent = 0;
  /// Its messaging tier (when the plan has tiers).
  std::optional<TierView> tier;
};

struct GroupView {
  std::string id;
  std::string name;
  absl::Time created_at;
};

/// A key's effective short-window limits and which are custom.
struct KeyLimitsView {
  std::string key_id;
  std::string tenant_id;
  std::string profile;
  uint64_t general = 0, messages = 0, sessions = 0;
  KeyRateLimits custom;
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
  /// Scale-out mode with Redis unavailable: the counters come from the cold
  /// store's aggregates, which may lag the last decisions.
  bool from_aggregate = false;
  /// A downgrade waiting for the period's end.
  std::optional<SubscriptionChange> pending_plan;
  /// Add-ons that have not ended (their units are in `limits`).
  std::vector<AddonRecord> addons;
  /// Top-ups that have not expired, with what is drawn of them (their
  /// unused units are in `limits`: ledger.h LimitWithTopups).
  std::vector<TopupRecord> topups;
  /// Per MeterId, counter meters only: the projection to the period's end
  /// (core/forecast.h). Empty when the daily series could not be read.
  std::vector<std::optional<Forecast>> forecasts;
  /// The smallest plan whose limits fit every projected counter with 20 %
  /// headroom (RecommendPlan); nullopt when none does or without forecasts.
  std::optional<std::string> recommended_plan;
};

/// One tenant in the admin's risk view (tenant_risk.h): its usage with
/// forecasts, its score, and the usage-threshold alerts of its period.
struct TenantRisk {
  UsageView usage;
  RiskScore score;
  size_t alerts = 0;
};

/// The tenants closest to their limits, highest risk first.
struct RiskReport {
  /// Tenants looked at (every tenant this instance holds).
  size_t considered = 0;
  std::vector<TenantRisk> tenants;
};

/// An add-on bought: the pack and what it was charged for the rest of the period.
struct BoughtAddon {
  AddonRecord addon;
  int64_t proration_cents = 0;
};

/// What moving to another plan would do now (subscriptions.cc).
struct PlanChangeQuote {
  PlanChangeKind kind = PlanChangeKind::kSame;
  const Plan* from = nullptr;
  const Plan* to = nullptr;
  /// Now for an upgrade; the period's end for a downgrade.
  absl::Time effective_at;
  /// Charged now (an admin's immediate downgrade: negative, credited).
  int64_t proration_cents = 0;
};

/// A tenant's subscription: its plan and period, the pending change, and
/// the ledger of changes, newest first.
struct SubscriptionView {
  TenantView tenant;
  const Plan* plan = nullptr;
  std::optional<SubscriptionChange> pending;
  std::vector<SubscriptionChange> changes;
};

struct DayUsage {
  absl::CivilDay day;
  std::vector<uint64_t> values;  ///< per MeterId
};

/// The longest range a report covers, in days (inclusive of both ends).
inline constexpr int kMaxReportDays = 366;

/// One hour of one UTC day, summed over channels.
struct HourUsage {
  absl::Time hour;               ///< the hour's start
  std::vector<uint64_t> values;  ///< per MeterId
};

/// Units of one counter meter on one channel.
struct ChannelUsage {
  MeterId meter = 0;
  std::string channel;  ///< empty when the meter has no channel dimension
  uint64_t value = 0;
};

/// One counter of one tenant's current period, as the reconciliation found it.
struct ReconcileRow {
  std::string tenant_id;
  std::string meter;
  absl::Time period_start;
  uint64_t counter = 0;    ///< the hot counter enforcement reads
  uint64_t aggregate = 0;  ///< the cold store's counter row
  Drift drift;
  bool repaired = false;  ///< the aggregate was set to the counter
};

struct ReconcileReport {
  absl::Time at;
  /// Where the hot counters live: "memory" (embedded) or "redis" (scale-out).
  std::string counters_from;
  /// Rows whose counter or aggregate is not zero.
  std::vector<ReconcileRow> rows;
  size_t tenants = 0;
  size_t flagged = 0;
  size_t repaired = 0;
};

/// What GET /admin/reconcile says of the last sync.
struct SyncSummary {
  absl::Time at;
  size_t flagged = 0;
  size_t repaired = 0;
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

  /// Binds journal `index` to the calling thread (an I/O thread); `post`
  /// schedules the journal's flush on that thread. No-op without journals
  /// or past their count.
  void BindJournal(size_t index, Journal::Post post);
  /// On a bound thread: flushes its journal and unbinds it.
  void UnbindJournal();
  /// Journal records replayed at start-up (0 without journals).
  size_t journal_replayed() const { return journals_ ? journals_->replayed() : 0; }

  const Catalog& catalog() const { return *opts_.catalog; }
  /// The delivery provider's name: "log" or "http".
  std::string_view provider_name() const {
    return opts_.delivery ? opts_.delivery->name() : std::string_view("log");
  }
  absl::Duration forecast_every() const { return opts_.forecast_every; }
  /// Scale-out: concurrent decisions of one tenant may reach the shared
  /// ledger in any order (several connections), so a caller that needs an
  /// order waits for each decision before the next.
  bool decides_concurrently() const { return opts_.shared_ledger != nullptr; }
  const Clock& clock() const { return *clock_; }

  // ---- Authentication
  /// Resolves a tenant API key; Unauthenticated when unknown or revoked.
  /// With a store shared by several instances, a key this instance does not
  /// know, or last checked over a second ago, is read from the store, so a
  /// key made, revoked or changed (its limits, its tenant's overrides) on
  /// another instance applies here within a second.
  /// `may_read_store` false (the caller is an I/O thread that PlanKeyLookup
  /// found the key in memory for): a key in memory is answered from memory
  /// even if its check lapsed in between.
  /// `raw_hash`: HashSecret(secret) when the caller has it already (from
  /// PlanKeyLookup), so that it is not taken twice; empty: taken here.
  absl::StatusOr<Principal> Authenticate(absl::string_view secret, bool may_read_store = true,
                                         absl::string_view raw_hash = {});
  /// True when keys are read through a store that several instances share.
  bool reads_keys_from_store() const { return store_->Shared(); }

  /// Where Authenticate(secret) would find the key, so that the HTTP layer
  /// keeps store reads off its I/O threads.
  enum class KeyLookup {
    kInMemory,            ///< from memory: no store read
    kInMemoryRefreshDue,  ///< from memory, but its check is due soon: this
                          ///< call claimed the refresh; run RefreshKey off
                          ///< the request path
    kReadsStore,          ///< a store read (unknown key, or its check lapsed)
  };
  /// Embedded: always kInMemory. Shared store: a key checked under 0.75 s
  /// ago is kInMemory; from 0.75 s to 0.95 s the first caller gets
  /// kInMemoryRefreshDue (the rest kInMemory until the refresh is done);
  /// from 0.95 s (so that a following Authenticate still finds it in
  /// memory), or unknown, kReadsStore. A key used at least every 0.2 s is
  /// thus refreshed in the background and not read on the request path.
  /// When it takes the key's hash (a shared store), it leaves it in
  /// `*raw_hash` (if given) for Authenticate.
  KeyLookup PlanKeyLookup(absl::string_view secret, std::string* raw_hash = nullptr);
  /// Reads `secret`'s key from the shared store again and adopts what it
  /// finds (as Authenticate does for a lapsed check), then ends the refresh
  /// PlanKeyLookup claimed. A store that is away changes nothing: the check
  /// lapses and the next request reads the store itself.
  void RefreshKey(absl::string_view secret);

  // ---- Metering
  /// Atomic check-and-consume (or check only with dry_run). Denials are
  /// decisions, not errors; errors are bad input or an unavailable store.
  void Consume(const Principal& who, MeterRequest req, Callback<Decision> done);
  /// Checks every request of a batch as Consume would before deciding (meter,
  /// quantity, channel, timestamp, session), changing nothing. Returns the
  /// index and error of each one that Consume would refuse as bad input.
  std::vector<std::pair<size_t, absl::Status>> ValidateBatch(const Principal& who,
                                                             const std::vector<MeterRequest>& reqs);
  /// The general rule alone, for routes that change nothing else: decides,
  /// and when allowed charges the rule and counts one api_call.
  Decision Admit(const Principal& who);
  /// Admit in either mode: in scale-out mode through the shared ledger (an
  /// error when it is unavailable), else Admit.
  absl::StatusOr<Decision> AdmitRequest(const Principal& who);

  // ---- Sessions, groups, subscribers (gauges as leases)
  void CreateSession(const Principal& who, std::string id, std::string phone,
                     Callback<Admitted<SessionView>> done);
  /// Sets the status; turning `working` past the sessions_active limit is denied.
  void UpdateSession(const Principal& who, std::string id, std::string status,
                     Callback<Admitted<SessionView>> done);
  void DeleteSession(const Principal& who, std::string id, Callback<Admitted<SessionView>> done);
  /// Renews a working session's lease.
  void Heartbeat(const Principal& who, std::string id, Callback<Admitted<SessionView>> done);
  /// General and qr rules for one QR poll of a session.
  absl::StatusOr<Admitted<SessionView>> PollQr(const Principal& who, absl::string_view id);
  absl::StatusOr<std::vector<SessionView>> ListSessions(const Principal& who);
  absl::StatusOr<SessionView> GetSession(const Principal& who, absl::string_view id);
  void CreateGroup(const Principal& who, std::string id, std::string name,
                   Callback<Admitted<GroupView>> done);
  void DeleteGroup(const Principal& who, std::string id, Callback<Admitted<GroupView>> done);
  absl::StatusOr<std::vector<GroupView>> ListGroups(const Principal& who);
  /// Sets the subscribers gauge; a value above its limit is denied.
  void SetSubscribers(const Principal& who, uint64_t count, Callback<Decision> done);
  /// Recorded events (lease expiry, ...), newest first.
  absl::StatusOr<std::vector<EventRecord>> Events(const Principal& who, size_t limit);
  /// The caller's tenant's alerts reached in [from, to), oldest first.
  absl::StatusOr<std::vector<AlertRecord>> Alerts(const Principal& who, absl::Time from,
                                                  absl::Time to);

  // ---- Reads
  /// Scale-out mode: counters from the shared ledger, or, while it is
  /// unavailable, from the cold store's aggregates (from_aggregate); an
  /// error when neither answers.
  absl::StatusOr<UsageView> ReadCurrentUsage(const Principal& who);
  /// ReadCurrentUsage without the forecasts (no cold-store read): the live
  /// usage stream reads it every tick.
  absl::StatusOr<UsageView> ReadCounters(const Principal& who);
  /// Records usage.forecast_exceeds_limit for every meter of every tenant
  /// this instance holds whose projection (AddForecasts) passes its limit:
  /// once per tenant, meter and period (the event id says which). The outbox
  /// relay calls it every forecast_every on the lease holder (alerts_engine.cc).
  /// Commits the events every kForecastEventsPerCommit (memory stays bounded
  /// however many tenants are over, and so does the commit: requests that
  /// need the writer wait behind it; 1,000 events took 1.3 s on a cold store
  /// of a million tenants), and returns early, OK, once `stop` (if given)
  /// returns true: it is asked between tenants.
  absl::Status CheckForecasts(const std::function<bool()>& stop = {});
  static constexpr size_t kForecastEventsPerCommit = 100;
  /// Compares every counter of every tenant this instance holds with its
  /// aggregate in the cold store (reconcile.cc). With `repair` (the nightly
  /// sync), embedded mode sets each aggregate that differs to the counter,
  /// exactly (no decision of the tenant is lost or counted twice); scale-out
  /// repairs nothing, since the facts drain keeps the aggregates and a write
  /// would race the facts still in flight. Unavailable while the counters
  /// cannot be read (scale-out: Redis away).
  absl::StatusOr<ReconcileReport> Reconcile(bool repair);
  /// The drift percentage above which a row is flagged.
  int reconcile_flag_percent() const { return opts_.reconcile_flag_percent; }
  /// The last nightly sync this instance ran, if any.
  std::optional<SyncSummary> LastSync() const;
  /// Runs the nightly sync (Reconcile(true)) and keeps its report for LastSync.
  absl::StatusOr<ReconcileReport> SyncAggregates();
  /// Scale-out: takes in every tenant of the shared store this instance has
  /// not seen yet (made through another instance since this one started), and
  /// reads again the plan, name, overrides, add-ons and top-ups of those it
  /// holds, so that the jobs and lists that go over every tenant (forecasts,
  /// reports, reconciliation, the admin's tenant list) miss none and show
  /// changes made through another instance. Embedded: nothing to do (every
  /// tenant is loaded at start, and changes are made here).
  absl::Status AdoptEveryTenant();
  /// Scale-out: reads the key `key_id` (and its tenant) from the shared
  /// store and adopts it, so that the admin's key routes find a key made or
  /// changed through another instance; an unknown id is left for the
  /// caller's own lookup to report. Embedded: nothing to do.
  absl::Status AdoptKeyById(const std::string& key_id);
  /// Closes every ended billing period whose late-event grace is over: its
  /// counter rows move into usage_aggregates with the period's plan and
  /// limits (PeriodClose), and leave start-up. Idempotent; a crash midway
  /// leaves each period closed whole or not at all (one batch, one
  /// transaction). Returns the periods closed. The scheduled jobs run it.
  absl::StatusOr<size_t> ClosePeriods();
  /// Records the report `type` (usage.report.weekly or .monthly) of `range`
  /// for every tenant this instance holds that existed before the range's
  /// end and has a webhook asking for it, unless it was made before (its id
  /// is deterministic): the scheduled jobs call it after each week or month.
  absl::Status MakeReports(std::string_view type, const DayRange& range);
  /// ReadCurrentUsage for callers that know it cannot fail (embedded mode).
  UsageView CurrentUsage(const Principal& who);
  /// Days in [from, to], newest first, one entry per day even when empty.
  absl::StatusOr<std::vector<DayUsage>> Daily(const Principal& who, absl::CivilDay from,
                                              absl::CivilDay to);
  /// The current period and up to months-1 before it (not before the
  /// subscription started), newest first.
  absl::StatusOr<std::vector<PeriodUsage>> History(const Principal& who, int months);

  /// The id of counter meter `meter`; 422 `unknown_meter` or `gauge_meter` otherwise.
  absl::StatusOr<MeterId> CounterMeter(absl::string_view meter) const;
  // ---- Reports (reports.cc)
  /// The tenant's current billing period (rolled over if due).
  BillingPeriod CurrentPeriod(const Principal& who);
  /// The 24 hours of the UTC day `day`, oldest first, one entry per hour even when empty.
  absl::StatusOr<std::vector<HourUsage>> Hourly(const Principal& who, absl::CivilDay day);
  /// Units per counter meter and channel within [from, to) (whole hours: the
  /// hour holding `from` counts whole), ordered by meter id then channel;
  /// only non-zero entries.
  absl::StatusOr<std::vector<ChannelUsage>> ChannelsBetween(const Principal& who, absl::Time from,
                                                            absl::Time to);
  /// Stored daily rows per meter and channel for days in [from, to], ordered
  /// by day, meter, channel; at most kMaxReportDays days.
  absl::StatusOr<std::vector<DailyChannelRow>> DailyByChannel(const Principal& who,
                                                              absl::CivilDay from,
                                                              absl::CivilDay to);
  /// A message of the caller's tenant (404 message_not_found for another tenant's).
  absl::StatusOr<MessageRecord> FindMessage(const Principal& who, absl::string_view id);

  // ---- The message queue (message_queue.cc; SPEC §2 "Deferred delivery")
  /// The record of `send` to queue for who's tenant, not yet stored: 404
  /// session_not_found, 422 unknown_channel.
  absl::StatusOr<MessageRecord> HeldMessage(const Principal& who, HeldSend send);
  /// Stores `messages` (HeldMessage's) as queued, in one commit, in order
  /// (a bulk's recipients keep theirs); `done` runs once they are durable.
  void QueueMessages(const Principal& who, std::vector<MessageRecord> messages,
                     Callback<std::vector<MessageRecord>> done);
  /// True when `d` (a send refused, or its replay) should be queued instead:
  /// its plan's on_limit for the refusing meter is `queue`.
  bool QueuesAtLimit(const Principal& who, const Decision& d) const;
  /// Cancels a queued message: 404 message_not_found, 409
  /// message_not_queued once it is released (or cancelled).
  void CancelMessage(const Principal& who, std::string id, Callback<MessageRecord> done);
  /// The caller's messages, oldest first; `status` empty = any.
  absl::StatusOr<MessagePage> ListMessages(const Principal& who, const std::string& status,
                                           const std::optional<MessageCursor>& after, size_t limit);
  /// The releaser's step for one message of DueMessages: takes it as far
  /// as it can go. A queued one is decided as a send through its session
  /// (quota, credits, warm-up cap) and, when admitted, charged in the commit
  /// that marks it released; claimed first (queued -> releasing) so a cancel
  /// cannot cross it, and charged idempotently (key
  /// release:<id>:<release_attempts>), so a release interrupted by a crash
  /// is finished, not repeated. A released one is handed to the provider
  /// once its session's messages rule lets it (unless it was paced when
  /// sent) and marked sent (the log provider). Blocks until committed: for
  /// the releaser's thread only.
  /// Marks `m` failed (from whichever of queued, releasing or released it
  /// is in) with `why`'s machine code as its reason: a message that can
  /// never go, found by the releaser. kFailed, or kGone when it had moved on.
  absl::StatusOr<ReleaseOutcome> FailMessage(const MessageRecord& m, const absl::Status& why);
  /// `hand_off` false: a queued message is admitted only (kReleased).
  absl::StatusOr<ReleaseOutcome> ReleaseMessage(const MessageRecord& m, bool hand_off = true);

  // ---- Subscriptions (subscriptions.cc)
  /// What changing the caller's plan to `plan` would do, changing nothing.
  /// 422 unknown_plan or interval_mismatch; 403 plan_not_selectable for a
  /// plan priced by contract (either side).
  absl::StatusOr<PlanChangeQuote> PreviewPlanChange(const Principal& who, absl::string_view plan);
  /// Changes the caller's plan as PreviewPlanChange says (422 same_plan for
  /// the plan it has); replaces a pending change.
  void ChangePlan(const Principal& who, std::string plan, Callback<SubscriptionChange> done);
  /// Cancels the pending change (404 no_pending_change).
  void CancelPendingPlan(const Principal& who, Callback<SubscriptionChange> done);
  /// Moves a tenant to any plan at once, charged or credited pro rata.
  void AdminChangePlan(absl::string_view tenant_id, std::string plan,
                       Callback<SubscriptionChange> done);
  absl::StatusOr<SubscriptionView> Subscription(const Principal& who);
  /// Buys a recurring pack of `meter` (addons.cc): `quantity` must be one of
  /// the catalog's pack sizes (422 invalid_pack_size listing them); the limit
  /// rises at once, the rest of the period is charged pro rata in the ledger.
  void BuyAddon(const Principal& who, std::string meter, uint64_t quantity,
                Callback<BoughtAddon> done);
  /// Ends add-on `id` at the end of the current period (404 addon_not_found;
  /// 409 addon_cancelled when it is ending already).
  void CancelAddon(const Principal& who, std::string id, Callback<AddonRecord> done);
  /// The add-ons that have not ended, oldest first.
  std::vector<AddonRecord> ListAddons(const Principal& who);
  /// Buys a one-off prepaid pack of `meter` (topups.cc): `quantity` must be
  /// one of the catalog's top-up sizes (422 invalid_pack_size listing them;
  /// no_topup_packs); its units lapse `expires_in_days` days from now (never
  /// when nullopt). Charged its price in the subscription ledger; usable at
  /// once, after the limit's units, oldest expiry first.
  void BuyTopup(const Principal& who, std::string meter, uint64_t quantity,
                std::optional<int64_t> expires_in_days, Callback<TopupRecord> done);
  /// The top-ups that have not expired, oldest expiry first, with what is
  /// drawn of them (scale-out: as the shared ledger counts it).
  absl::StatusOr<std::vector<TopupRecord>> ListTopups(const Principal& who);

  // ---- Tenants and keys (admin)
  void CreateTenant(TenantSpec spec, Callback<CreatedTenant> done);
  /// Every tenant; in scale-out, those made through other instances too
  /// (read from the store first: Unavailable when it is away).
  absl::StatusOr<std::vector<TenantView>> ListTenants();
  absl::StatusOr<TenantView> GetTenant(absl::string_view id);
  /// The `shown` tenants at the highest risk (tenant_risk.h). Every tenant
  /// is ranked by what it used; the shown × kRiskCandidatesPerShown highest
  /// are looked at again with their forecasts and alerts (cold-store reads)
  /// and ranked by risk, then alerts, then id. Scale-out: tenants made
  /// through other instances are taken in first.
  absl::StatusOr<RiskReport> TenantsAtRisk(size_t shown);
  /// The admin reading as tenant `id` (X-Quotum-Tenant): a principal with no
  /// key. 404 tenant_not_found. Scale-out: a tenant made through another
  /// instance is taken in.
  absl::StatusOr<Principal> ActAsTenant(absl::string_view id);
  void CreateKey(absl::string_view tenant_id, Callback<MintedKey> done);
  void RevokeKey(absl::string_view key_id, Callback<std::string> done);
  /// Sets (value) or clears (nullopt) per-meter limit overrides.
  void SetLimits(absl::string_view tenant_id,
                 std::vector<std::pair<std::string, std::optional<uint64_t>>> limits,
                 Callback<TenantView> done);

  /// Merges custom limits into a key's (fields left nullopt keep their value).
  void SetKeyRateLimits(absl::string_view key_id, KeyRateLimits patch,
                        Callback<KeyLimitsView> done);
  absl::StatusOr<KeyLimitsView> GetKeyRateLimits(absl::string_view key_id);

  /// OK when the store accepts writes.
  absl::Status Ready() const;
  /// Each dependency ("store"; "redis" in scale-out mode) and whether it answers.
  std::vector<std::pair<std::string, absl::Status>> Dependencies() const;
  const EngineStats& stats() const { return stats_; }
  /// Counts one webhook attempt's outcome (the outbox relay).
  void CountWebhookAttempt(const std::string& outcome) { stats_.webhook_attempts.Add({outcome}); }
  void CountEmail(const std::string& outcome) { stats_.emails.Add({outcome}); }
  void CountRelayFailure() { stats_.relay_failures.Add({}); }
  /// Events not yet fanned out plus deliveries pending; an error when the
  /// store cannot say.
  absl::StatusOr<uint64_t> OutboxBacklog() { return store_->OutboxBacklog(); }
  /// Requests waiting for the next group commit.
  size_t commit_queue_depth() const { return queue_.pending(); }

  /// Commits a batch of the outbox relay in a transaction of its own.
  absl::Status CommitOutbox(CommitBatch batch) { return CommitDrained(std::move(batch)); }

  // ---- Webhooks (webhooks.cc). Their URL is checked by the caller (the
  // operator's target policy, notify/webhook_target.h).
  /// Registers a webhook for `events` (KnownEventType each; "*" = all):
  /// 422 unknown_event_type, 409 too_many_webhooks past max_webhooks_per_tenant.
  absl::StatusOr<WebhookRecord> CreateWebhook(const Principal& who, std::string url,
                                              std::vector<std::string> events, std::string secret);
  absl::StatusOr<std::vector<WebhookRecord>> ListWebhooks(const Principal& who);
  /// Deletes one: nothing more is delivered to it (404 webhook_not_found).
  absl::Status DeleteWebhook(const Principal& who, const std::string& id);
  /// A webhook's latest deliveries, newest first, each with its attempts.
  absl::StatusOr<std::vector<std::pair<DeliveryRecord, std::vector<AttemptRecord>>>>
  WebhookDeliveries(const Principal& who, const std::string& id, size_t limit);
  /// Admin: sends a delivery again (dead or delivered: with max_attempts
  /// more attempts; pending: now rather than after its backoff). 404
  /// delivery_not_found.
  absl::StatusOr<std::pair<DeliveryRecord, std::vector<AttemptRecord>>> RetryDelivery(
      const std::string& id);

 private:
  /// Commits a tenant CreateTenant made, with its first key: in the group
  /// commit, or alone with a shared store (where the tenant's id may be
  /// taken by another instance meanwhile); `finish` gets the status.
  void CommitNewTenant(TenantRecord rec, ApiKeyRecord key, CommitQueue::Done& finish);
  struct KeyEntry {
    std::string key_id;
    TenantState* tenant = nullptr;
    bool revoked = false;
    bool committed = false;
    KeyRateLimits limits;
    /// Shared store only: when the store last confirmed this entry (to the
    /// millisecond, in 8 bytes: a million entries fit a smaller allocation).
    CompactTime checked_at = absl::InfinitePast();
  };
  /// Authenticate against a shared store (see Authenticate).
  absl::StatusOr<Principal> AuthenticateShared(const KeyHash& hash, const std::string& raw_hash,
                                               bool may_read_store);
  /// Reads the key whose SHA-256 is `raw_hash` from the shared store and
  /// adopts it; `cached` answers when the store is away.
  absl::StatusOr<Principal> ReadKeyFromStore(const KeyHash& hash, const std::string& raw_hash,
                                             const std::optional<Principal>& cached);
  /// Makes this instance's key match `snap`, read from the store at `now`
  /// (from before the read), unless a read begun later has confirmed the
  /// entry already (a slow refresh must not undo a newer revocation);
  /// returns the entry.
  KeyEntry& AdoptKey(const KeySnapshot& snap, const KeyHash& hash, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry_mu_);
  /// Where a read of the shared store began: the clock, and how many local
  /// changes had settled (GuardLocalChangeLocked). Taken before the read.
  struct StoreRead {
    absl::Time now;
    uint64_t changes_settled;
  };
  StoreRead BeginStoreRead() const;
  /// The tenant of `snap`, created or updated (plan, overrides) from it; null
  /// when its plan is not in this instance's catalog. `read`: where the read
  /// of `snap` began. A tenant held here is left as it is while a change
  /// made here is being committed, or when that read began before the last
  /// such commit ended (counted, not timed: a clock stepped back changes
  /// nothing): the snapshot may predate the change.
  TenantState* AdoptTenant(const KeySnapshot& snap, const StoreRead& read)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry_mu_);
  /// `finish` of a change to `t`'s plan, limits, add-ons or top-ups, made
  /// here and about to be committed, wrapped so that AdoptTenant leaves the
  /// tenant alone until the commit has ended and `finish` has run.
  CommitQueue::Done GuardLocalChangeLocked(TenantState& t, CommitQueue::Done finish)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);

  /// One short-window rule to apply: category, who it is counted for, cost.
  /// `subject` (a key id or session id) must outlive the RatePass built from it.
  struct RuleTarget {
    ratelimit::Category category;
    absl::string_view subject;
    uint64_t cost = 1;
  };
  RatePass EvaluateRates(TenantState& t, const Principal& who, absl::Span<const RuleTarget> targets,
                         absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// A denial decision for the first refused rule of `pass`.
  Decision RateDenial(const RatePass& pass);
  /// Counts a decision in the stats; `meter` saves a lookup when the caller has it.
  void CountDecision(const Decision& d, std::optional<MeterId> meter = std::nullopt);
  /// The shape the session and group operations share. Under the tenant lock:
  /// `check` may refuse with an error (nothing charged); then `rules` are
  /// decided together and a refusal answers with its denial; otherwise `apply`
  /// gets the pass and the decision so far, and either charges (ApplyRates and
  /// its effect, returning what to run after unlocking: usually the commit) or
  /// turns the decision into a denial (a concurrent limit) and returns nothing.
  template <typename T>
  void TenantOp(
      const Principal& who, Callback<Admitted<T>>& done, std::vector<RuleTarget> rules,
      absl::FunctionRef<absl::Status(TenantState&)> check,
      absl::FunctionRef<absl::AnyInvocable<void()>(TenantState&, absl::Time, RatePass&, Decision&)>
          apply);
  /// Refuses a concurrent-limit increase on `d` (unless the plan shadows the
  /// meter); true when the operation may go on.
  bool AdmitGauge(TenantState& t, MeterId m, absl::Time now, Decision& d)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// Stops counting working sessions whose lease ran out (records an event).
  void ExpireLeases(TenantState& t, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  SessionView SessionViewOf(const TenantState& t, const std::string& id, const SessionState& s,
                            absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  SessionRecord SessionRecordOf(const TenantState& t, const std::string& id,
                                const SessionState& s) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// Commits `fill` with an api_call for `who`; `done` gets the commit status.
  /// Runs under the tenant lock; returns the failed-enqueue action, if any.
  absl::AnyInvocable<void()> CommitWithApiCall(TenantState& t,
                                               absl::FunctionRef<void(CommitBatch&)> fill,
                                               CommitQueue::Done done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// Warm-up cap for a session today, if the plan has one and it still ramps.
  std::optional<uint64_t> WarmupCap(const TenantState& t, const SessionState& s, absl::Time now,
                                    int64_t* day) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);

  /// ReleaseMessage's decision: a send of m through its session, a dry run
  /// or the charge itself (with m marked released in its commit).
  /// `now` (whole milliseconds, read just before the charge, which reads the
  /// clock again) becomes the message's released_at.
  absl::StatusOr<Decision> DecideRelease(TenantState& t, const MessageRecord& m, bool dry_run,
                                         absl::Time now);
  /// ReleaseMessage for a queued (or stale releasing) message: kSent here
  /// means admitted and released, not yet handed off.
  absl::StatusOr<ReleaseOutcome> AdmitQueued(TenantState& t, const MessageRecord& m,
                                             absl::Time now);
  /// Where a hand-off of released message `m` that came to `a` leaves it:
  /// sent, released again after a backoff, or failed.
  std::pair<MessageTransition, ReleaseOutcome> AfterHandOff(const MessageRecord& m,
                                                            const DeliveryAnswer& a,
                                                            absl::Time now) const;
  /// ReleaseMessage for a released message: paced, then handed off.
  absl::StatusOr<ReleaseOutcome> HandOff(TenantState& t, const MessageRecord& m);
  /// One unit of session `session_id`'s messages rule (a hand-off's pace),
  /// decided and charged alone.
  absl::StatusOr<Decision> PaceHandOff(TenantState& t, const std::string& session_id);
  /// Commits one message transition alone: false when the message was not
  /// in `from` any more.
  absl::StatusOr<bool> TransitionMessage(MessageTransition change);

  // ---- A failed message's charge given back (give_back.cc)
  /// Commits `to_failed` (released -> failed) for released message `m`,
  /// giving its charge back when the policy says so (`surely_unsent`: the
  /// message cannot have reached anyone). False when `m` was not released
  /// any more (nothing given back then).
  absl::StatusOr<bool> FailReleased(TenantState& t, const MessageRecord& m,
                                    MessageTransition to_failed, bool surely_unsent);
  /// The charge of released message `m` to give back, with `reason`:
  /// nullopt when it was charged in a period that has closed since.
  std::optional<GivenBackCharge> ChargeOf(TenantState& t, const MessageRecord& m,
                                          std::string reason, absl::Time now);
  /// FailReleased's give-back on the embedded backend: the failed mark and
  /// the units taken out of the store in one commit, then out of memory.
  absl::StatusOr<bool> FailGivingBackLocally(TenantState& t, MessageTransition to_failed,
                                             const GivenBackCharge& c);
  /// Scale-out: the give-back on the shared ledger (once per message), then
  /// the failed mark in the cold store.
  absl::StatusOr<bool> FailGivingBackShared(TenantState& t, MessageTransition to_failed,
                                            const GivenBackCharge& c);
  /// Scale-out: a hand-off interrupted after its message's give-back and
  /// before the failed mark is finished (failed, not sent): kFailed then,
  /// nullopt for a message not given back.
  absl::StatusOr<std::optional<ReleaseOutcome>> FinishGivenBack(const MessageRecord& m);
  /// What a refused release waits for.
  static ReleaseOutcome RefusedRelease(const Decision& d);

  class Loader;  // the start-up SnapshotSink (engine.cc)
  /// Fills a new tenant's plan, profile, dates, current period and zeroed
  /// counters (the same for a created, loaded or adopted tenant).
  void SetUpTenant(TenantState& t, const Plan& plan, absl::Time subscription_start,
                   absl::Time created_at, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// The api_call row of one request of `t` in the period starting at `period_start`.
  static UsageDelta ApiCallRow(const TenantState& t, absl::Time period_start, absl::Time now);
  TenantState* FindTenant(absl::string_view id) const;
  /// FindTenant under a reader lock of the registry, for background threads
  /// (the releaser, the period sweep) that hold none.
  TenantState* FindTenantShared(absl::string_view id) const ABSL_LOCKS_EXCLUDED(registry_mu_);
  /// FindTenantShared, and in scale-out a tenant this instance has not seen
  /// yet is read from the shared store and taken in. Null when there is none
  /// (or it is not committed); an error when the store does not answer.
  absl::StatusOr<TenantState*> FindOrAdoptTenant(absl::string_view id)
      ABSL_LOCKS_EXCLUDED(registry_mu_);
  /// Scale-out: reads tenant `id` from the shared store and takes in what it
  /// finds (a tenant held already is brought up to date). Null when there is
  /// none; while the store does not answer, a tenant this instance holds is
  /// returned as last seen, and an unknown one is an error.
  absl::StatusOr<TenantState*> ReadTenantFromStore(absl::string_view id)
      ABSL_LOCKS_EXCLUDED(registry_mu_);
  /// The key index: both maps change together.
  void AddKeyLocked(const KeyHash& hash, KeyEntry entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry_mu_);
  void EraseKeyLocked(const KeyHash& hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry_mu_);
  /// Drops keys_by_id_'s mapping of `e`'s id if it points at `e` (another
  /// entry may have claimed the id since).
  void ForgetKeyIdLocked(const KeyEntry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry_mu_);
  KeyEntry* FindKeyLocked(const KeyHash& hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry_mu_);
  KeyEntry* FindKeyByIdLocked(absl::string_view key_id) const
      ABSL_SHARED_LOCKS_REQUIRED(registry_mu_);
  /// Moves the tenant's period forward if `now` left it (lazy rollover).
  void Touch(TenantState& t, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  std::optional<uint64_t> EffectiveLimit(const TenantState& t, MeterId m) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// EffectiveLimit with t's top-ups of `m` (LimitWithTopups at counter `used`).
  std::optional<uint64_t> LimitWithTopupsOf(const TenantState& t, MeterId m, uint64_t used,
                                            absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// OK when `meter` (a known one) has a limit for t: 422 unlimited_meter
  /// (a top-up of it would never be drawn on).
  absl::Status CheckLimited(TenantState& t, absl::string_view meter);
  /// Scale-out: sets the drawn units of t's top-ups to what the shared
  /// ledger counts now (for limits judged outside a decision). Without t.mu.
  absl::Status RefreshSharedTopups(TenantState& t);
  /// Sets the drawn units of `topups` to what the shared ledger counts.
  absl::Status ReadSharedTopups(absl::string_view tenant_id, std::vector<TopupRecord>& topups);
  TenantView ViewOf(const TenantState& t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  absl::Status Validate(const MeterRequest& req, MeterId* meter) const;
  /// Validate's rules for a reservation operation on counter meter `m`.
  absl::Status ValidateHold(const MeterRequest& req, MeterId m, MeterId* meter) const;
  /// A subscription may not start in the future (usage would fall before it) or before 1970.
  absl::Status CheckSubscriptionStart(const TenantSpec& spec, absl::Time now) const;
  /// Where req's usage instant (`at`, else now) counts: nullopt for the
  /// tenant's current period; the closed period before it for a late event,
  /// timestamped there and reported within late_event_grace of its end (never
  /// a send through a session, which happens now). Errors (422): ahead of
  /// `now` beyond the clock skew, before the previous period or the
  /// subscription, or in the previous period after the grace.
  absl::StatusOr<std::optional<BillingPeriod>> LatePeriodOf(const TenantState& t,
                                                            const MeterRequest& req,
                                                            absl::Time now) const
      ABSL_SHARED_LOCKS_REQUIRED(t.mu);
  /// The working session `id` sends through (null when `id` is empty).
  absl::Status FindSendingSession(TenantState& t, const std::string& id,
                                  SessionState** session) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// Decides under the tenant's lock. Returns what to run once the lock is
  /// released (a reply, or a failed enqueue's completion); empty when `done`
  /// has been handed to the commit queue.
  absl::AnyInvocable<void()> ConsumeLocked(const Principal& who, TenantState& t, MeterId m,
                                           MeterRequest& req, Callback<Decision>& done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);

  // ---- ConsumeLocked's steps: compile (CompileChecks), execute (a Ledger),
  // effects (CommitConsume).

  /// What a consume charged in memory, taken back if its commit fails.
  struct ConsumeCharge {
    MeterId meter = 0;
    uint64_t units = 0;
    absl::Time period_start;  ///< the request's period (its api_call's)
    /// The units went to the closed period before (a late event), not to
    /// the live counter.
    bool late = false;
    /// Credits the units cost (0: none, and credits_meter is unused).
    MeterId credits_meter = 0;
    uint64_t credits = 0;
    bool api_call = false;
    std::string warm_session;  ///< empty when no warm-up count was charged
    int64_t warm_day = 0;
    std::string idempotency_key;  ///< empty when not idempotent
    /// The reservation an allowed hold made (`reserved`) or ended; empty id
    /// when none.
    std::string hold_id;
    HeldUnits hold;
    bool reserved = false;
    /// (top-up id, units) the charge drew.
    std::vector<std::pair<std::string, uint64_t>> topup_draws;
    /// The session whose messaging tier recorded recipients (empty: none),
    /// and what Verdicts::tier_recorded says to take back.
    std::string tier_session;
    std::vector<TierRecord> tier_recorded;
    TierLevel tier_level_before;
    TierLevel tier_level_after;
  };
  /// The tenant, key and session facts CompileChecks reads; views t and who.
  CompileInput CompileInputOf(const TenantState& t, const Principal& who,
                              const SessionState* session, absl::Time now,
                              std::optional<BillingPeriod> late_period = std::nullopt) const
      ABSL_SHARED_LOCKS_REQUIRED(t.mu);
  /// Replaces v's counter values with the shared ledger's (or, when it is
  /// unavailable, the cold store's aggregates, marking v).
  absl::Status ReadSharedCounters(TenantState& t, UsageView& v);
  /// t's usage now, with its forecasts (ReadCurrentUsage).
  absl::StatusOr<UsageView> UsageOf(TenantState& t);
  /// UsageOf without the forecasts.
  absl::StatusOr<UsageView> CountersOf(TenantState& t);
  /// The tenants a live webhook of which asks for `type` and whose report of
  /// `range` has not been made yet.
  absl::StatusOr<absl::flat_hash_set<std::string>> TenantsWantingReport(std::string_view type,
                                                                        const DayRange& range);
  /// Committed tenants, in no particular order.
  std::vector<TenantState*> CommittedTenants();
  /// Sets the aggregates of `rows` (one tenant's, drifted) to their counters
  /// as they are now, exactly, and marks them repaired (a row of a period
  /// that has ended since is left alone).
  absl::Status RepairAggregates(TenantState& t, std::vector<ReconcileRow*>& rows);
  /// One attempt of RepairAggregates: sets the aggregates and lists in
  /// `repairing` the rows it set (not yet marked).
  absl::Status SetAggregates(TenantState& t, const std::vector<ReconcileRow*>& rows,
                             std::vector<ReconcileRow*>& repairing);
  /// Returns once everything enqueued before the call has committed.
  absl::Status WaitForCommits();
  /// Waits until every acknowledged record is in the cold store
  /// (FoldAcknowledged), then ProjectInto.
  void AddForecasts(UsageView& v);
  /// Fills v.forecasts and v.recommended_plan from the period's daily
  /// series in the cold store, as it is now.
  void ProjectInto(UsageView& v);
  /// A scale-out consume waiting for the shared ledger: owns everything its
  /// program views (heap-allocated, so the views stay put).
  struct PendingConsume {
    Principal who;
    MeterRequest req;
    MeterId meter = 0;
    absl::Time now, at;
    CheckProgram program;
    UsageFacts facts;  ///< program.facts points here
    Callback<Decision> done;
  };
  /// Consume in scale-out mode: compiled under the tenant lock, executed by
  /// the shared ledger outside it (asynchronously); the ledger appends the
  /// usage rows and message to its stream with the charge.
  void ConsumeShared(const Principal& who, MeterId m, MeterRequest req, Callback<Decision> done);
  /// The rest of ConsumeShared once `program` is compiled: executes it
  /// (asynchronously), or, when the session cannot send (`sending`), looks
  /// for a replay with a blocking call (so only on the blocking pool).
  void DecideShared(std::unique_ptr<PendingConsume> c, absl::StatusOr<CheckProgram> program,
                    const absl::Status& sending);
  /// Answers a scale-out consume from the ledger's result. When the ledger
  /// asks for the tenant's baseline or finds the session changed, hands the
  /// consume to the blocking pool (FinishSharedSlowly).
  void FinishShared(std::unique_ptr<PendingConsume> c, absl::StatusOr<LedgerResult> x);
  /// Gives the ledger the baseline or reads the sessions again, executes
  /// once more and answers; blocks on PostgreSQL and Redis.
  void FinishSharedSlowly(std::unique_ptr<PendingConsume> c, absl::StatusOr<LedgerResult> x);
  /// Answers `c` from a final ledger result (fail-open, replays, errors).
  void AnswerShared(std::unique_ptr<PendingConsume> c, absl::StatusOr<LedgerResult> x);
  /// A scale-out send whose session the ledger found changed: reads the
  /// tenant's sessions again and compiles `c` afresh; the send's error when
  /// the session cannot send.
  absl::Status ResendShared(PendingConsume& c);
  /// Raises the shared ledger's counters of t's current period to what the
  /// cold store holds (after Redis lost data or on a tenant's first use).
  absl::Status GiveBaseline(TenantState& t);
  /// Execute on the shared ledger, giving it the baseline first if it asks.
  absl::StatusOr<LedgerResult> ExecuteShared(TenantState& t, const CheckProgram& p, absl::Time now);
  /// Compiles `req` under t's lock; an error for a bad timestamp. `sending`
  /// says whether the session may send.
  absl::StatusOr<CheckProgram> CompileLocked(const Principal& who, TenantState& t, MeterId m,
                                             const MeterRequest& req, absl::Time now,
                                             absl::Status* sending);
  /// Scale-out: replaces `values` (per MeterId) of the counter meters with
  /// the shared ledger's counters of `period`; leaves them when it cannot
  /// answer (unavailable, or no baseline yet).
  void OverlaySharedCounters(const std::string& tenant_id, const BillingPeriod& period,
                             std::vector<uint64_t>& values);
  /// Commits a batch of the facts drain in a transaction of its own.
  absl::Status CommitDrained(CommitBatch batch);
  /// The close of t's period starting at `period_start` as of `now`, or
  /// nullopt while it is open or within the late-event grace. `changes` is
  /// t's subscription ledger (for the plan of the period).
  std::optional<PeriodClose> CloseOf(TenantState& t, absl::Time period_start, absl::Time now,
                                     const std::vector<SubscriptionChange>& changes);
  /// Runs `submit` (which hands the completion to the commit queue; false
  /// when the queue is stopped) and waits for the commit's status.
  static absl::Status AwaitCommit(absl::FunctionRef<bool(CommitQueue::Done&)> submit);

  // ---- Sessions, groups and subscribers in scale-out mode (shared_leases.cc)
  /// Compiles `rules` and the limit of `gauge` into `op` and runs it on the
  /// shared ledger, giving it the tenant's baseline first if it asks.
  absl::StatusOr<LeaseResult> RunSharedLease(const Principal& who, LeaseOp& op,
                                             std::vector<RuleTarget> rules,
                                             std::optional<MeterId> gauge);
  /// The decision of a decided lease operation (done or refused).
  Decision SharedLeaseDecision(const LeaseOp& op, const LeaseResult& x,
                               std::optional<MeterId> gauge);
  /// Refreshes this instance's cache of the sessions in `x` (`all`: x holds
  /// every session of the tenant).
  void CacheSessions(TenantState& t, const LeaseResult& x, bool deleted, bool all);
  absl::StatusOr<Admitted<SessionView>> SharedSessionOp(const Principal& who, LeaseOpKind kind,
                                                        absl::string_view id,
                                                        absl::string_view text);
  absl::StatusOr<Admitted<GroupView>> SharedGroupOp(const Principal& who, LeaseOpKind kind,
                                                    absl::string_view id, absl::string_view name);
  absl::StatusOr<Decision> SharedSetSubscribers(const Principal& who, uint64_t count);
  absl::StatusOr<std::vector<SessionView>> SharedSessions(const Principal& who);
  absl::StatusOr<std::vector<GroupView>> SharedGroups(const Principal& who);

  // ---- Alerts (alerts_engine.cc)
  /// What resolving a tenant's alerts needs beyond its memory: its alerts of
  /// the current period and, scale-out, the counters of their meters.
  struct FiredAlerts {
    absl::Time period_start;
    std::vector<AlertRecord> alerts;
    std::vector<uint64_t> shared_used;  ///< scale-out: per alert, its meter's counter
  };
  /// Reads them (a store read, a shared-ledger read); call without t.mu.
  absl::StatusOr<FiredAlerts> ReadFiredAlerts(TenantState& t);
  /// The alerts of `fired` that t's limits as they are now no longer hold
  /// (usage.threshold_resolved), resolved at `now`.
  std::vector<AlertRecord> ResolvedLocked(const TenantState& t, const FiredAlerts& fired,
                                          absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(t.mu);

  // ---- Plan changes (subscriptions.cc)
  absl::StatusOr<PlanChangeQuote> QuoteLocked(const TenantState& t, absl::string_view plan,
                                              bool admin, absl::Time now) const
      ABSL_SHARED_LOCKS_REQUIRED(t.mu);
  void ApplyPlanChange(TenantState& t, absl::string_view plan, absl::string_view actor,
                       Callback<SubscriptionChange> done);
  /// Applies `c` in memory (an applied change sets the plan, a pending one
  /// waits) and queues its commit with the pending change it replaces;
  /// returns what to run after unlocking.
  absl::AnyInvocable<void()> CommitPlanChangeLocked(TenantState& t, SubscriptionChange c,
                                                    absl::Time now, const FiredAlerts& fired,
                                                    Callback<SubscriptionChange> done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  void SetPlanLocked(TenantState& t, const Plan& plan) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// Commits `addon` and its ledger line `line` (in memory already);
  /// `undo` takes them back if the commit fails. Returns what to run after
  /// unlocking.
  template <typename T>
  absl::AnyInvocable<void()> CommitAddonLocked(TenantState& t, const AddonRecord& addon,
                                               const SubscriptionChange& line,
                                               std::vector<AlertRecord> resolved, T answer,
                                               absl::AnyInvocable<void()> undo, Callback<T> done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// Applies t's pending change once `now` reached it (the period rollover).
  void ApplyDuePlanChange(TenantState& t, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);

  // ---- Fail-open (fail_open.cc)
  /// True when `s` is the shared ledger's unavailability and the policy is to fail open.
  bool FailsOpen(const absl::Status& s) const;
  /// The answer to `p` admitted unchecked.
  Decision FailOpenDecision(const CheckProgram& p) const;
  /// The charge to record for `p` admitted unchecked; a fresh id.
  FailOpenCharge FailOpenChargeOf(const CheckProgram& p, const UsageFacts& facts);
  /// Admits a consume unchecked: answers once its charge is committed.
  void ConsumeFailOpen(std::unique_ptr<PendingConsume> c);
  /// AdmitRequest's fail-open path: commits the api_call's charge, then answers.
  absl::StatusOr<Decision> AdmitFailOpen(const CheckProgram& p, const UsageFacts& facts);
  /// Reconciles pending fail-open charges into the shared ledger (the sweep
  /// leader's drain calls it); returns how many were counted.
  absl::StatusOr<size_t> ReconcileFailOpen();
  /// The embedded ledger for `t` (locked by the caller) and a send's session.
  MemoryLedger LedgerFor(TenantState& t, SessionState* session) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// Answers a replayed, reused or pending idempotency key (`r.replay` is not
  /// kNone): returns what to run after unlocking.
  absl::AnyInvocable<void()> AnswerKnownKey(TenantState& t, const CheckProgram& p, LedgerResult r,
                                            Callback<Decision>& done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// A completion, parked on the first request's idempotency entry, that
  /// replays that request's decision once it is committed (or says it did not).
  static CommitQueue::Done AwaitFirstCommit(TenantState& t, std::string key,
                                            Callback<Decision> done);
  /// Queues what an applied consume persists; its completion marks the key
  /// committed or undoes the charge. Returns what to run after unlocking.
  absl::AnyInvocable<void()> CommitConsume(TenantState& t, const CheckProgram& p, MeterRequest& req,
                                           absl::Time at, const SessionState* session,
                                           LedgerResult x, absl::Time now, Callback<Decision>& done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  CommitQueue::Done ConsumeCompletion(TenantState& t, ConsumeCharge c, Decision d,
                                      Callback<Decision> done);
  void UndoConsume(TenantState& t, const ConsumeCharge& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// Notes in `c` what the decision recorded in its session's messaging
  /// tier (v.tier_recorded), for UndoTier.
  static void NoteTierRecorded(const std::string& session_id, const SessionState* session,
                               Verdicts& v, ConsumeCharge& c);
  /// Takes back the recipients (and qualification) c's decision recorded in
  /// its session's messaging tier, unless later decisions replaced them.
  void UndoTier(TenantState& t, const ConsumeCharge& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// Start-up (embedded): the recipients of the last 7 days' sends that the
  /// sessions' messaging tiers count, read again from the released messages.
  absl::Status LoadTierRecipients(absl::Time now);
  /// Scale-out: what the shared ledger keeps of session v: its messaging
  /// tier (none, null, when the ledger cannot be read) and what it sent on
  /// its warm-up day (left 0 then). Best effort: the operation has succeeded.
  void FillSharedSession(TenantState& t, SessionView& v) ABSL_LOCKS_EXCLUDED(t.mu);
  /// Runs `done` with ShuttingDown: what to do after unlocking when Enqueue failed.
  static absl::AnyInvocable<void()> FailLater(CommitQueue::Done done);
  /// Opens the journals when configured, reading the records the store lacks.
  absl::Status OpenJournals();
  /// Adds the journals' records the store lacked at start-up (replayed) to
  /// the memory just loaded from the store, as the load would have had the
  /// store held them: the current period's counters, idempotency records
  /// younger than their TTL, the top-ups' drawn units. Alerts live in the
  /// store only. Before any request; the writer folds them afterwards.
  void TakeInReplayedRecords(const CommitBatch& replayed, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry_mu_);
  /// Before a read of the store's usage rows: waits until every decision
  /// acknowledged from a journal so far is in the store.
  void FoldAcknowledged() {
    if (journals_) queue_.WaitUntilFolded();
  }
  /// Hands a decision's records to the calling thread's journal when it has
  /// one and they are `journalable` (journal_codec.h), else to the writer.
  /// Called under t.mu. False, leaving `done` untouched, once stopped.
  bool EnqueueEffects(TenantState& t, bool journalable, absl::FunctionRef<void(CommitBatch&)> fill,
                      CommitQueue::Done& done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// Counts one api_call in memory and persists it (best effort: the caller
  /// does not wait; a failed commit takes it back).
  void CountApiCallLocked(TenantState& t, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  /// Persists an api_call already counted in memory (see CountApiCallLocked).
  void PersistApiCallLocked(TenantState& t, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);

  EngineOptions opts_;
  Store* store_;
  const Clock* clock_;
  EngineStats stats_;
  /// Embedded mode with journals: opened by Start before the load. Declared
  /// before queue_, whose writer reports to it until the queue is destroyed.
  std::unique_ptr<JournalSet> journals_;
  CommitQueue queue_;
  /// Scale-out mode only; started after queue_, stopped before it.
  std::unique_ptr<FactsDrain> drain_;
  std::atomic<uint64_t> fail_open_seq_{0};
  /// Local changes to tenants whose commit has ended (GuardLocalChangeLocked).
  std::atomic<uint64_t> local_changes_settled_{0};
  MeterId api_calls_meter_ = 0;
  MeterId messages_sent_meter_ = 0;
  MeterId credits_meter_ = 0;
  MeterId sessions_meter_ = 0;
  MeterId groups_meter_ = 0;
  MeterId subscribers_meter_ = 0;
  /// Per MeterId (last: no meter): the "allowed" decisions counter.
  std::vector<std::atomic<uint64_t>*> allowed_counters_;

  /// Scale-out only: runs the rare decision steps that block on Redis or
  /// PostgreSQL (a session list read again, a baseline), so that neither an
  /// I/O thread nor the Redis pipeline's threads wait on them. Stopped by
  /// Stop(); what is handed to it later runs on the caller's thread.
  std::unique_ptr<TaskPool> blocking_pool_;

  Mutex sync_mu_;  ///< held through a sync
  mutable Mutex last_sync_mu_;
  std::optional<SyncSummary> last_sync_ ABSL_GUARDED_BY(last_sync_mu_);

  mutable SharedMutex registry_mu_;
  /// Owns every tenant, including those whose creation failed to commit
  /// (kept so that stale pointers stay valid).
  TenantArena tenant_arena_ ABSL_GUARDED_BY(registry_mu_);
  /// The tenants, found by id (TenantState never moves).
  absl::flat_hash_set<TenantState*, ById<&TenantState::id>, ById<&TenantState::id>> tenants_
      ABSL_GUARDED_BY(registry_mu_);
  std::vector<TenantState*> tenant_order_ ABSL_GUARDED_BY(registry_mu_);
  /// Node-based, so entries keep their address: keys_by_id_ points into it.
  /// (With a million keys both maps sit at half load; a flat map of whole
  /// entries plus a map of id strings cost 170 bytes more per key.)
  absl::node_hash_map<KeyHash, KeyEntry> keys_by_hash_ ABSL_GUARDED_BY(registry_mu_);
  /// The entries of keys_by_hash_, found by key_id.
  absl::flat_hash_set<KeyEntry*, ById<&KeyEntry::key_id>, ById<&KeyEntry::key_id>> keys_by_id_
      ABSL_GUARDED_BY(registry_mu_);
  /// Shared store: the keys whose background refresh (RefreshKey) is claimed.
  Mutex key_refresh_mu_;
  absl::flat_hash_set<KeyHash> key_refreshes_ ABSL_GUARDED_BY(key_refresh_mu_);
};

/// Stable 64-bit FNV-1a hash (the idempotency fingerprint survives restarts).
uint64_t StableHash(absl::string_view data);

}  // namespace quotum::engine
