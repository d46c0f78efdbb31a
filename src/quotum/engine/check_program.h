// The compiled form of one metering request: every rule it meets, as plain
// data. Compiling is pure (catalog, tenant facts, request, clock reading in;
// a CheckProgram out); executing a program against a tenant's state is the
// engine's job (later a Ledger port's: in memory, or one Redis script).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/catalog.h"
#include "quotum/engine/store.h"
#include "quotum/ratelimit/limiter.h"
#include "quotum/ratelimit/rules.h"

namespace quotum::engine {

struct MeterRequest;
struct SessionState;
struct UsageFacts;

/// One short-window rule to charge: a sliding window, fixed window or GCRA
/// (rule.algorithm) over `subject`'s state in `category`.
struct RateCheck {
  ratelimit::Category category = ratelimit::Category::kGeneral;
  /// The key id or session id the rule counts for. A view: the string it
  /// names (the principal's key id or the request's session id) must outlive
  /// the check and every RatePass decided from it.
  absl::string_view subject;
  /// Units this request takes from the window.
  uint64_t cost = 1;
  /// Algorithm, units per window (the profile's, the key's custom limit, or
  /// the rule's fixed limit) and window length in nanoseconds.
  ratelimit::Rule rule;
  /// Decided and recorded, never denies.
  bool shadow = false;
};

/// The short-window rules of one request, in evaluation order (a request
/// meets at most two).
using RateChecks = absl::InlinedVector<RateCheck, 2>;

/// A session's daily warm-up cap: a counter keyed by (session, day) that
/// resets when the day since the session first worked changes.
struct WarmupCheck {
  absl::string_view session_id;  ///< views the request's session id
  /// Whole days since the session first became working; the counter's window.
  int64_t day = 0;
  /// Units the session may send on `day`.
  uint64_t cap = 0;
  /// When `day` ends and the counter starts afresh.
  absl::Time day_end;
  /// The plan keeps the cap in shadow mode: decided and recorded, never denies.
  bool shadow = false;
};

/// A top-up a check may draw on (SPEC §1 "top-up"): prepaid units used
/// after the limit's, oldest expiry first. The ledger keeps how many of its
/// units are drawn; the program only names it.
struct TopupGrant {
  std::string id;
  uint64_t units = 0;
  /// InfiniteFuture when it never lapses.
  absl::Time expires_at = absl::InfiniteFuture();
};

/// A meter's top-ups that have not expired at compile time, oldest expiry
/// first (then by id): the order they are drawn in.
using TopupGrants = std::vector<TopupGrant>;

/// The billing-period quota of the counter meter charged.
struct QuotaCheck {
  MeterId meter = 0;
  absl::string_view meter_name;  ///< views the request's meter name
  /// Units asked for, before any warm-up cap trims a partial request.
  uint64_t quantity = 0;
  /// Effective limit (override, else the plan's, plus add-ons) before
  /// top-ups; nullopt = unlimited.
  std::optional<uint64_t> limit;
  /// Top-ups of the meter (none when unlimited or late). The limit judged is
  /// max(limit, counter) + their unused units: units past `limit` are drawn
  /// from them (Ledger: TopupDrawsOf).
  TopupGrants topups;
  OnLimit on_limit = OnLimit::kReject;
  /// The plan keeps this meter's limit in shadow mode.
  bool shadow = false;
  /// The request's period: the counter belongs to it (and the api_call);
  /// its end is when the quota resets.
  BillingPeriod period;
  /// A late event: the units are counted in this closed period before
  /// `period` instead, never enforced (no limit, no alert); the live
  /// counter of `period` is left alone.
  std::optional<BillingPeriod> late_period;
  /// The period the units are counted in.
  const BillingPeriod& UnitsPeriod() const { return late_period ? *late_period : period; }
  /// The plan's alert thresholds in percent (views the catalog's plan).
  std::span<const int> alert_thresholds;
  /// The meter may have reservations (every counter but messages_sent,
  /// which is charged when sent); false lets a ledger skip looking for them.
  bool holdable = true;
};

/// The credits a send costs (SPEC §1 "credits"): on a plan that limits the
/// credits meter, every messages_sent unit also takes `per_unit` credits
/// (the catalog's cost of the message's channel and type), in the same
/// decision, all or nothing (or as many whole messages as fit, if partial).
struct CreditsCheck {
  MeterId meter = 0;             ///< the credits meter
  absl::string_view meter_name;  ///< "credits" (static)
  uint64_t per_unit = 1;
  /// Effective credits limit before top-ups; nullopt for a late event
  /// (never enforced).
  std::optional<uint64_t> limit;
  /// Top-ups of credits, as QuotaCheck::topups.
  TopupGrants topups;
  OnLimit on_limit = OnLimit::kReject;
  bool shadow = false;
  std::span<const int> alert_thresholds;
};

/// A reservation (SPEC §2 "reserve -> commit/release"): units held against
/// the quota's limit until committed, released or expired. Each tenant and
/// meter has one held sum; a decision judges its quota against the counter
/// plus that sum (expired holds given back first).
struct HoldCheck {
  enum class Op : uint8_t {
    /// Hold quota.quantity units for `ttl` (judged like a consume, never
    /// partially); the counter is not charged.
    kReserve,
    /// Free the reservation's units and charge quota.quantity: always
    /// admitted up to the units held; more only if it fits (else refused,
    /// and the reservation stands).
    kCommit,
    /// Free the reservation's units; charges nothing.
    kRelease,
  };
  Op op = Op::kReserve;
  /// The reservation's id (views the request's).
  absl::string_view id;
  /// kReserve: how long the units are held.
  absl::Duration ttl;
};

/// A session's messaging tier (SPEC §2 "Messaging tiers"): the recipients of
/// the units asked for that the session has not messaged in the last 24 h
/// must fit under its tier's cap of unique recipients. The ledger keeps the
/// tier's level and the recipients; the program names them.
struct TierCheck {
  absl::string_view session_id;  ///< views the request's session id
  /// The recipient of each unit asked for, in order (view the request's
  /// messages); a recipient listed twice counts once.
  std::vector<absl::string_view> recipients;
  /// The plan's tiers (views the catalog's plan).
  const TierPolicy* policy = nullptr;
};

/// Every check one metering request needs, decided all or nothing: when any
/// non-shadow check refuses, nothing is charged (except the api_call count,
/// which every request pays).
struct CheckProgram {
  /// The tenant every check belongs to (a ledger's keys are scoped to it).
  absl::string_view tenant_id;
  RateChecks rates;
  std::optional<WarmupCheck> warmup;
  QuotaCheck quota;
  /// Counted in the same period as the quota's units (UnitsPeriod).
  std::optional<CreditsCheck> credits;
  /// A send through a session whose plan has messaging tiers, on a channel
  /// and of a type they count.
  std::optional<TierCheck> tier;
  /// A reservation operation on the quota's meter (never with credits,
  /// warm-up, a session, partial or dry_run).
  std::optional<HoldCheck> hold;
  /// Admit what fits (warm-up cap, period limit) instead of all or nothing.
  bool partial = false;
  /// Decide only: charge no quota, remember no idempotency key.
  bool dry_run = false;
  /// The request also counts one api_call (and pays the general rule).
  bool count_api_call = true;
  /// Sending a message through a working session (messages rule and warm-up apply).
  bool sends = false;
  /// The working session a send goes through (views the request's id;
  /// empty when not sending), and its first_working_at as compiled. A shared
  /// ledger checks that the session still works, with that first_working_at
  /// (so the warm-up was compiled right); the embedded engine checks the
  /// session before executing, and its ledger ignores these.
  absl::string_view sending_session;
  std::optional<absl::Time> sending_first_working;
  /// Empty when the request is not idempotent (no key, or a dry run).
  absl::string_view idempotency_key;
  /// Stable hash of the request's identity; a reused key must match it. 0
  /// when `idempotency_key` is empty.
  uint64_t fingerprint = 0;
  /// What a shared ledger appends to its facts stream with the charge (when
  /// the decision charges units or counts the api_call); null: nothing. Set
  /// by the engine after compiling, never by CompileChecks; the embedded
  /// ledger ignores it.
  const UsageFacts* facts = nullptr;
};

/// What compiling reads besides the request: configuration and the facts of
/// the tenant, key and session involved. Pointers are borrowed for the call.
struct CompileInput {
  absl::string_view tenant_id;
  const ratelimit::RuleSet* rate_rules = nullptr;
  /// The catalog's messages_sent meter (the one a session sends).
  MeterId messages_sent_meter = 0;
  /// The catalog's credits meter (what messages_sent units cost).
  MeterId credits_meter = 0;
  const Plan* plan = nullptr;
  const RateLimitProfile* profile = nullptr;
  /// Per MeterId admin overrides of the plan's limits; may be empty.
  const std::vector<std::optional<uint64_t>>* overrides = nullptr;
  /// The catalog and the tenant's add-ons that have not ended; may be null.
  const Catalog* catalog = nullptr;
  const std::vector<AddonRecord>* addons = nullptr;
  /// The tenant's top-ups, oldest expiry first; may be null.
  const std::vector<TopupRecord>* topups = nullptr;
  BillingPeriod period;
  /// Set when the request's timestamp lies in the closed period before
  /// `period`, within the late-event grace: the units count there, unenforced.
  std::optional<BillingPeriod> late_period;
  /// The calling key: its id (the general rule's subject) and custom limits.
  absl::string_view key_id;
  KeyRateLimits key_limits;
  /// The working session the request sends through, or null.
  const SessionState* session = nullptr;
  absl::Time now;
};

/// A meter's effective period limit: the tenant's override when it has one,
/// else the plan's, plus the units of the tenant's add-ons of that meter
/// (given with the catalog that names meters); nullopt = unlimited.
/// `overrides` and `addons` may be null or empty. The one place a limit is
/// made of its parts.
std::optional<uint64_t> LimitOf(const Plan& plan,
                                const std::vector<std::optional<uint64_t>>* overrides, MeterId m,
                                const Catalog* catalog = nullptr,
                                const std::vector<AddonRecord>* addons = nullptr);

/// The top-ups of `meter` in `topups` (may be null) unexpired at `now`, in
/// drawing order. Pure.
TopupGrants TopupGrantsOf(const std::vector<TopupRecord>* topups, absl::string_view meter,
                          absl::Time now);

/// What a meter's top-ups add at `now`: whether it has any unexpired, and
/// their unused units (as `topups` records what is drawn). Pure.
struct TopupBalance {
  bool any = false;
  uint64_t left = 0;
};
TopupBalance TopupBalanceOf(const std::vector<TopupRecord>& topups, absl::string_view meter,
                            absl::Time now);

/// One short-window rule resolved against the tenant's profile and the key's
/// custom limits. Pure.
RateCheck CompileRate(const ratelimit::RuleSpec& spec, const RateLimitProfile& profile,
                      const KeyRateLimits& key_limits, ratelimit::Category category,
                      absl::string_view subject, uint64_t cost);

/// A session's warm-up day at `now`: `index` counts the whole 24 h steps
/// from its first working instant to `now` (truncated toward zero; day 0 is
/// the first 24 h), and `end` is when that day ends. Pure.
struct WarmupDay {
  int64_t index = 0;
  absl::Time end;
};
WarmupDay WarmupDayAt(absl::Time first_working_at, absl::Time now);

/// The warm-up day and cap of a session at `now`; nullopt when the plan has
/// no warm-up, the session never worked, or its ramp is over. Pure.
std::optional<WarmupCheck> CompileWarmup(const Plan& plan, const SessionState& session,
                                         absl::string_view session_id, absl::Time now);

/// The credits check of a request for `meter`: set for messages_sent on a
/// plan that limits credits (CreditsCheck). Pure.
std::optional<CreditsCheck> CompileCredits(const CompileInput& in, const MeterRequest& req,
                                           MeterId meter);

/// The tier check of a send through `in.session` (TierCheck): set when the
/// plan has messaging tiers that count the request's channel and type and
/// the request names a recipient per unit. Pure.
std::optional<TierCheck> CompileTier(const CompileInput& in, const MeterRequest& req,
                                     MeterId meter);

/// Compiles a validated request for counter meter `meter`. Pure: reads only
/// its arguments. The program views strings of `req` and `in.key_id`, which
/// must outlive it.
CheckProgram CompileChecks(const CompileInput& in, const MeterRequest& req, MeterId meter);

}  // namespace quotum::engine
