// What the ledger's scripts (decide.lua, lease.lua) share on the C++ side:
// how rate checks are passed and read back, instants as text, and how
// failures become statuses.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "quotum/engine/check_program.h"
#include "quotum/engine/decision.h"
#include "quotum/store/redis/redis_connection.h"

namespace quotum::store::redis {

/// `t` as Unix milliseconds in decimal.
std::string UnixMillisText(absl::Time t);

/// Appends the count of `rates`, then five arguments per check: algorithm,
/// limit, window_ns, cost, shadow ("1"/"0"). Limits and costs are capped so
/// the limiter script's arithmetic stays exact.
void AppendRateArguments(const engine::RateChecks& rates, std::vector<std::string>& a);

/// Appends the four arguments of a credits check: credits per unit ("0"
/// without a check), limit ("" = unlimited), on_limit allow and shadow
/// ("1"/"0").
void AppendCreditsArguments(const std::optional<engine::CreditsCheck>& c,
                            std::vector<std::string>& a);

/// Appends the three arguments of a reservation operation: "" (none), "s"
/// reserve, "c" commit or "l" release, or "-" (none, and the meter is never
/// held: `holdable` false); the reservation id; a reserve's TTL in ms.
void AppendHoldArguments(const std::optional<engine::HoldCheck>& h, bool holdable,
                         std::vector<std::string>& a);

/// Appends a check's top-ups: their count, then per top-up its id, units
/// and expiry (Unix ms; "" when it never lapses), in drawing order.
void AppendTopupArguments(const engine::TopupGrants& grants, std::vector<std::string>& a);

/// Appends a tier check: the number of recipients ("0" without a check),
/// then the number of steps, the steps, the step-up delay (ms) and the
/// recipients.
void AppendTierArguments(const std::optional<engine::TierCheck>& t, std::vector<std::string>& a);

/// decide.lua's and lease.lua's replies: a header of six fields, then
/// kReplyRateFields per rate check (RateOutcomeOf reads them), then what is
/// each script's own.
inline constexpr size_t kReplyHeaderFields = 6, kReplyRateFields = 4;
/// The reply kind of both scripts when the tenant's baseline mark is missing
/// (its counters may have been lost): nothing was done.
inline constexpr long long kReplyNoBaseline = 5;

/// Rate check `check`'s outcome from the four reply fields at `at`:
/// allowed, remaining, reset_ns, retry_ns.
engine::RateOutcome RateOutcomeOf(const engine::RateCheck& check, ReplyView reply, size_t at);

/// 503 store_unavailable, naming `cause`.
absl::Status Unavailable(const absl::Status& cause);

/// An error reply as a status: a server that cannot serve now (LOADING, BUSY,
/// ...) or is out of memory (OOM) is 503 store_unavailable like a lost
/// connection.
absl::Status StatusOfError(ReplyView reply);

}  // namespace quotum::store::redis
