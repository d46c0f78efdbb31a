// The Ledger port: where a CheckProgram is decided and charged. The engine
// compiles a request into a program (check_program.h), a ledger executes it
// all or nothing, and the engine turns the result into effects (rows to
// persist). Two ledgers implement it: MemoryLedger (in-process state under
// the tenant lock, persisted by the group commit) and RedisLedger (one call
// of one generic Lua script). Both must pass tests/golden/decisions.json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "quotum/core/quota.h"
#include "quotum/engine/check_program.h"
#include "quotum/engine/decision.h"
#include "quotum/engine/lease_program.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

/// A recipient a decision recorded in a session's RecipientWindow: the
/// record's number and when it was last messaged before (nullopt: not kept).
struct TierRecord {
  std::string to;
  uint64_t record = 0;
  std::optional<int64_t> previous;
};

/// How each check of a program was judged, as plain numbers: what a ledger
/// measures, before any Decision is built (DecisionOf builds it, the same way
/// for every ledger).
struct Verdicts {
  /// One per rate check, in program order.
  RateOutcomes rates;
  /// Index of the first non-shadow rate check that refused; -1 if none.
  int refused = -1;
  /// Per rate check (bit i = check i): refused, but in shadow mode.
  uint32_t rate_shadow_denied = 0;
  /// The session's warm-up count on the program's day before this request.
  uint64_t warmup_used = 0;
  bool warmup_denied = false;         ///< the warm-up cap refused (not in shadow)
  bool warmup_shadow_denied = false;  ///< the cap would have refused (shadow)
  /// The period quota's verdict. In shadow mode a refusal is admitted with
  /// overage, and quota_shadow_denied is set.
  QuotaOutcome quota;
  bool quota_shadow_denied = false;
  /// The meter's period counter before this request, and units charged to it
  /// (0 unless the decision was applied; a dry run charges nothing).
  uint64_t quota_before = 0;
  uint64_t charged = 0;
  /// The credits check's verdict (p.credits): the credits counter before
  /// this request; refused (not in shadow); would have refused (shadow);
  /// credits charged (charged x per_unit once applied).
  uint64_t credits_before = 0;
  bool credits_denied = false;
  bool credits_shadow_denied = false;
  uint64_t credits_charged = 0;
  /// Units held by the meter's reservations before this request (expired
  /// ones given back), which the quota is judged with; with p.hold kCommit
  /// or kRelease, the units and expiry of its reservation, which the
  /// ledger found (else LedgerResult::hold_missing); with kReserve, when
  /// the new reservation expires.
  uint64_t held_before = 0;
  uint64_t hold_units = 0;
  absl::Time hold_expires_at;
  /// Unused units of p.quota.topups (of p.credits->topups) before this
  /// request, which the ledger found; and the limits judged with them
  /// (LimitWithTopups), set by JudgeQuota (JudgeCredits).
  uint64_t topup_left = 0;
  uint64_t credits_topup_left = 0;
  /// The check had top-ups when it was decided (a replay is judged as its
  /// first decision was, whatever the program has now).
  bool quota_topups = false;
  bool credits_topups = false;
  std::optional<uint64_t> quota_limit;
  std::optional<uint64_t> credits_limit;
  /// (top-up id, units) drawn by the applied decision, in drawing order
  /// (the embedded ledger's; a shared one appends them to its facts).
  std::vector<std::pair<std::string, uint64_t>> topup_draws;
  /// p.tier as the ledger found it (due step ups applied): the session's
  /// level and cap (nullopt: unlimited), its unique recipients counted in
  /// the 24 h before this request, the longest prefix of p.tier's
  /// recipients that fits the cap, and when the oldest recipient counted
  /// leaves the window (Unix ms; 0: none). tier_denied: JudgeTier refused.
  bool tier_checked = false;
  uint32_t tier_level = 0;
  std::optional<uint64_t> tier_limit;
  uint64_t tier_used = 0;
  uint64_t tier_fit = 0;
  int64_t tier_oldest_ms = 0;
  bool tier_denied = false;
  /// The embedded ledger's record of what the applied decision changed in
  /// the session's tier, so a failed commit can take it back: each distinct
  /// recipient recorded, and the level before.
  std::vector<TierRecord> tier_recorded;
  TierLevel tier_level_before;
};

/// What executing a program produced.
struct LedgerResult {
  enum class Replay {
    kNone,          ///< decided now (or, for Ledger::Replay, the key is unknown)
    kReplayed,      ///< answered with the first decision made with this key
    kKeyReused,     ///< the key was used for a different request (fingerprint)
    kFirstPending,  ///< the first request with this key has not committed yet
  };
  Replay replay = Replay::kNone;
  /// Meaningful when replay is kNone or kReplayed.
  Decision decision;
  /// kNone only: the verdicts the decision was built from.
  Verdicts verdicts;
  /// A shared ledger that may have lost its counters (restarted empty)
  /// decided nothing: give it the tenant's baseline (SharedLedger::SetBaseline)
  /// and execute again.
  bool needs_baseline = false;
  /// A shared ledger found p.sending_session unable to send and decided
  /// nothing: gone, not working (its lease ran out), or made again since the
  /// program was compiled (kStale: compile again with the session as it is).
  enum class SessionCheck { kOk, kNotFound, kNotWorking, kStale };
  SessionCheck session = SessionCheck::kOk;
  /// p.hold commits or releases a reservation the ledger does not hold
  /// (unknown, expired, committed or released): nothing was decided.
  bool hold_missing = false;
  /// p.hold reserves under an id that is held already (its Idempotency-Key
  /// was used again after its record expired): nothing was decided.
  bool hold_exists = false;
};

/// Executes CheckPrograms. Implementations are bound to a store of counters;
/// the program names the tenant and every key it touches.
class Ledger {
 public:
  virtual ~Ledger() = default;

  /// Decides every check of `p` at `now` and, unless p.dry_run, charges them
  /// all or nothing: when a non-shadow check refuses, nothing is charged but
  /// the api_call (when p.count_api_call). A dry run charges nothing unless
  /// it is allowed, and then only the general rule and the api_call. A known
  /// idempotency key answers as LedgerResult::replay says, charging nothing.
  /// Errors: the charge would pass kMaxCounter (422 quantity_overflow), or the
  /// ledger is unavailable (503 store_unavailable).
  virtual absl::StatusOr<LedgerResult> Execute(const CheckProgram& p, absl::Time now) = 0;

  /// Looks up p.idempotency_key only, deciding and charging nothing: kNone
  /// when the key is unknown or expired (or `p` has none).
  virtual absl::StatusOr<LedgerResult> Replay(const CheckProgram& p, absl::Time now) = 0;
};

/// A ledger shared by every instance (Redis): it holds the tenants' counters
/// itself, so reads of them go to it too.
class SharedLedger : public Ledger {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<LedgerResult>)>;
  /// Execute without waiting: `done` runs later, on another thread, with what
  /// Execute would return. `p` (and what it views) must stay valid until
  /// `done` has run.
  virtual void ExecuteAsync(const CheckProgram& p, absl::Time now, Done done) = 0;
  /// The period counters of `meters` (names) of `tenant_id` in the period
  /// starting at `period_start`, in order; 0 for a counter never charged.
  /// kFailedPrecondition when the tenant has no baseline (see SetBaseline).
  virtual absl::StatusOr<std::vector<uint64_t>> Counters(
      absl::string_view tenant_id, absl::Time period_start,
      const std::vector<std::string>& meters) = 0;
  /// OK when the ledger answers.
  virtual absl::Status Ping() = 0;
  /// A session's messaging tier as the ledger keeps it: its level and the
  /// unique recipients counted over 24 h and over 7 days at `now`.
  struct TierState {
    TierLevel level;
    uint64_t used_24h = 0;
    uint64_t unique_7d = 0;
  };
  virtual absl::StatusOr<TierState> TierOf(absl::string_view tenant_id,
                                           absl::string_view session_id, absl::Time now) = 0;
  /// What a session sent on its warm-up day that ends at `day_end` (0 when
  /// nothing, or the day's count has expired).
  virtual absl::StatusOr<uint64_t> WarmupSent(absl::string_view tenant_id,
                                              absl::string_view session_id, absl::Time day_end) = 0;
  /// Raises the tenant's counters of `period` to at least `values` (meter
  /// name, units: what the cold store holds), gives it `leases` unless it
  /// holds the tenant's leases already (never over them), and marks the
  /// tenant as having its baseline. Idempotent; never lowers a counter, so
  /// instances may race to do it.
  virtual absl::Status SetBaseline(absl::string_view tenant_id, const BillingPeriod& period,
                                   const std::vector<std::pair<std::string, uint64_t>>& values,
                                   const LeaseBaseline& leases) = 0;
  /// What is drawn of each top-up (meter, id) of `tenant_id` as the ledger
  /// counts it, in order; 0 for one never drawn.
  virtual absl::StatusOr<std::vector<uint64_t>> TopupsDrawn(
      absl::string_view tenant_id,
      const std::vector<std::pair<std::string, std::string>>& topups) = 0;
  /// Raises what the ledger counts as drawn of each of `topups` (the cold
  /// store's records, unexpired) to at least its `drawn`; never lowers.
  /// Call before SetBaseline: decisions wait for the baseline mark.
  virtual absl::Status RestoreTopups(absl::string_view tenant_id,
                                     const std::vector<TopupRecord>& topups) = 0;
  /// SetBaseline without sessions, groups or gauges.
  absl::Status SetBaseline(absl::string_view tenant_id, const BillingPeriod& period,
                           const std::vector<std::pair<std::string, uint64_t>>& values) {
    return SetBaseline(tenant_id, period, values, LeaseBaseline{});
  }
  /// Decides and applies one session, group or gauge operation with its rate
  /// checks, all or nothing, appending the change to the facts stream; or
  /// reads the tenant's sessions or groups (lease_program.h).
  virtual absl::StatusOr<LeaseResult> RunLease(const LeaseOp& op, absl::Time now) = 0;
  /// The tenant's gauges as the ledger holds them: working sessions whose
  /// lease runs past `now`, groups, subscribers. kFailedPrecondition without
  /// the tenant's lease baseline.
  virtual absl::StatusOr<LeaseGauges> Gauges(absl::string_view tenant_id, absl::Time now) = 0;
  /// Counts fail-open charge `c` (admitted while this ledger was unavailable)
  /// in its tenant's counters and appends it to the facts stream like a
  /// decision, once per c.id however often it is called. False, changing
  /// nothing, while the tenant has no baseline (its next decision gives it
  /// one; reconcile later).
  virtual absl::StatusOr<bool> Reconcile(const FailOpenCharge& c) = 0;
  /// Takes charge `c` back out of its tenant's counters (never below 0) and
  /// appends the give-back to the facts stream, in one atomic step, once per
  /// c.message_id however often it is called. False, changing nothing,
  /// while the tenant has no baseline.
  virtual absl::StatusOr<bool> GiveBack(const GivenBackCharge& c) = 0;
  /// The reason GiveBack was given for message `message_id` (nullopt: its
  /// charge was not given back). Lets a hand-off interrupted between the
  /// give-back and the failed mark finish it instead of sending.
  virtual absl::StatusOr<std::optional<std::string>> GivenBackReason(
      absl::string_view tenant_id, absl::string_view message_id) = 0;
};

/// The limit a check with top-ups is judged by: `limit` when it has none
/// (or is unlimited), else max(limit, counter) + `left` (the top-ups' unused
/// units; units past `limit` were drawn from them). Pure.
std::optional<uint64_t> LimitWithTopups(std::optional<uint64_t> limit, bool has_topups,
                                        uint64_t counter, uint64_t left);

/// Units that charging `units` on `counter` takes from top-ups: those of
/// them past `limit`, at most `left`. Pure.
uint64_t TopupDrawOf(std::optional<uint64_t> limit, uint64_t counter, uint64_t units,
                     uint64_t left);

/// Judges p.credits given the credits counter, after JudgeQuota: the units
/// JudgeQuota admitted must also fit the credits limit at per_unit each,
/// else the decision is refused (credits_denied), trimmed to the whole
/// messages that fit (partial), or admitted (shadow: credits_shadow_denied;
/// on_limit allow). kOverflow in v.quota.verdict when the credits counter
/// would pass kMaxCounter. Pure; does nothing without p.credits.
void JudgeCredits(const CheckProgram& p, uint64_t counter, Verdicts& v);

/// Judges p.tier after JudgeCredits, from v's tier fields: the units admitted
/// must lie within the recipients that fit (v.tier_fit), else the decision
/// is refused (tier_denied) or trimmed to them (partial). Pure; does nothing
/// without p.tier or once another check refused.
void JudgeTier(const CheckProgram& p, Verdicts& v);

/// The decision for verdicts `v` of program `p` at `now`. Pure; the same for
/// every ledger.
Decision DecisionOf(const CheckProgram& p, const Verdicts& v, absl::Time now);

/// Judges the warm-up cap and the period quota of `p`, given the session's
/// warm-up count today and the meter's counter: fills v's warm-up and quota
/// fields (not quota_before or charged). The quota counts v.held_before as
/// used (less the units of the reservation p.hold commits or releases); a
/// commit of at most the units held is always admitted, a release admits 0.
/// Pure; kOverflow in v.quota.verdict when the charge would pass kMaxCounter.
void JudgeQuota(const CheckProgram& p, uint64_t warmup_used, uint64_t counter, Verdicts& v);

}  // namespace quotum::engine
