#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/time/time.h"
#include "quotum/ratelimit/rules.h"

namespace quotum::engine {

/// Which rule refused a request.
enum class DenyReason : uint8_t {
  kNone = 0,
  kQuotaExceeded = 1,  ///< billing-period limit of a counter, or a concurrent (gauge) limit
  kRateLimited = 2,    ///< a short-window rule (general, messages, sessions, qr)
  kWarmupLimit = 3,    ///< a session's daily warm-up cap
  kTierLimit = 4,      ///< a session's messaging tier (unique recipients per 24 h)
};

/// How one short-window rule judged a request.
struct RateOutcome {
  ratelimit::Category category = ratelimit::Category::kGeneral;
  uint64_t limit = 0;
  uint64_t remaining = 0;  ///< after this request, if it is applied
  int64_t window_ns = 0;
  int64_t reset_ns = 0;  ///< until the window is replenished
  int64_t retry_ns = 0;  ///< when denied: until this request could pass
  bool allowed = true;
  bool shadow = false;  ///< the rule is in shadow mode (never denies)
};

/// The short-window rules of one decision; a request meets at most two.
using RateOutcomes = absl::InlinedVector<RateOutcome, 2>;

/// What a send cost in credits (CreditsCheck).
struct CreditsUse {
  uint64_t per_unit = 0;  ///< credits one message costs
  uint64_t charged = 0;   ///< credits charged (0 for a check or a denial)
  /// The credits limit; nullopt for a late event.
  std::optional<uint64_t> limit;
  /// Credits left after this decision (UINT64_MAX without a limit).
  uint64_t remaining = 0;
};

/// Where a send stood against its session's messaging tier (TierCheck).
struct TierUse {
  uint32_t level = 0;
  /// Unique recipients per rolling 24 h; nullopt = unlimited.
  std::optional<uint64_t> limit;
  /// Unique recipients counted before this decision.
  uint64_t used = 0;
};

/// What a reservation operation did (HoldCheck).
struct ReservationUse {
  enum class State : uint8_t { kHeld, kCommitted, kReleased };
  State state = State::kHeld;
  std::string id;
  /// Units the reservation holds (held: what this reserve holds when allowed).
  uint64_t units = 0;
  absl::Time expires_at;
};

/// The result of one decision over every rule that applies to a request. The
/// period-quota part (meter, limit, remaining, reset_at) is what an
/// idempotent replay returns; `rates` and `shadow_denied` describe this call.
struct Decision {
  bool allowed = false;
  uint64_t requested = 0;
  /// Units charged (0 for a check or a denial).
  uint64_t consumed = 0;
  /// Units left under the limit after this decision (UINT64_MAX if unlimited).
  uint64_t remaining = 0;
  /// Effective limit; nullopt = unlimited.
  std::optional<uint64_t> limit;
  /// Units admitted beyond the limit under an `allow` (soft) policy or in shadow mode.
  uint64_t overage = 0;
  /// The billing period the decision applies to: [period_start, reset_at).
  absl::Time period_start;
  /// When the limit resets: the billing period's end.
  absl::Time reset_at;
  /// The meter charged or checked; empty for requests that charge no meter.
  std::string meter;
  DenyReason reason = DenyReason::kNone;
  /// The refusing rule: a category name ("general", "messages", ...),
  /// "warmup", or the meter whose limit refused.
  std::string rule;
  /// When denied by a short-window rule or the warm-up cap: until it could pass.
  int64_t retry_ns = 0;
  /// Warm-up details when the warm-up cap applied.
  std::optional<uint64_t> warmup_cap;
  uint64_t warmup_used = 0;
  /// Every short-window rule applied, in evaluation order.
  RateOutcomes rates;
  /// Rules in shadow mode that would have denied this request.
  std::vector<std::string> shadow_denied;
  /// True when this decision was answered from the idempotency store.
  bool replayed = false;
  /// Scale-out, fail-open policy: admitted unchecked while the shared ledger
  /// (Redis) was unavailable; `remaining` is then not known (0).
  bool fail_open = false;
  /// Set when the send also cost credits.
  std::optional<CreditsUse> credits;
  /// Set when the session's messaging tier applied.
  std::optional<TierUse> tier;
  /// Set for a reservation operation; a reserve consumes nothing (its units
  /// are held: `remaining` counts them as used).
  std::optional<ReservationUse> reservation;
  /// A late event: counted in the closed period [period_start, reset_at)
  /// before the request's, unenforced.
  bool late = false;
};

}  // namespace quotum::engine
