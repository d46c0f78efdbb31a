#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>

#include "absl/time/time.h"
#include "quotum/engine/decision.h"
#include "quotum/engine/engine.h"
#include "quotum/http/reply.h"

namespace quotum::http {

/// `t` in RFC 3339, or null when absent (a JSON field that may be unset).
boost::json::value TimeOrNull(const std::optional<absl::Time>& t);

/// {"per_message", "charged", "limit", "remaining"} of a send's credits.
boost::json::object CreditsJson(const engine::CreditsUse& c);
/// A plan of the catalog as GET /api/v2/plans lists it: price, interval and
/// anchor, limits, rate-limit profile, alert thresholds, colour bands and
/// the add-on packs on sale.
boost::json::object PlanJson(const Catalog& cat, const Plan& p);
/// {"allowed","consumed","remaining","limit","reset_at",...} of a decision.
/// Unlimited meters show "limit": null and "remaining": null.
boost::json::object DecisionJson(const engine::Decision& d);

/// The same object serialised directly (the consume hot path). Meter names are
/// validated identifiers and timestamps RFC 3339, so nothing needs escaping.
std::string DecisionBody(const engine::Decision& d);

/// Rate-limit headers of a decision: the IETF draft-11 RateLimit-Policy and
/// RateLimit fields listing every policy applied (each short-window rule by
/// category name, the billing-period quota as "quota"), and X-RateLimit-Limit
/// /-Remaining/-Reset for the refusing rule, or else the tightest one.
/// X-Quotum-Shadow lists shadow-mode rules that would have refused.
void AddDecisionHeaders(Reply& r, const engine::Decision& d, absl::Time now);

/// The 429 for a refused decision, by rule: `rate_limited` (the seed's exact
/// body), `warmup_limit`, or `quota_exceeded` (period quota or concurrent
/// limit). Retry-After equals the body's retryAfter; X-Quotum-Rule names the rule.
Reply DenialReply(const engine::Decision& d, absl::Time now);

/// usage/current body.
/// A pending plan change as usage/current and the subscription show it
/// ({id, plan, requested_at, effective_at}), or null.
boost::json::value PendingPlanJson(const std::optional<engine::SubscriptionChange>& c);

/// {id, meter, units, price_cents, started_at, ends_at (null until cancelled)}.
boost::json::object AddonJson(const engine::AddonRecord& a);
/// A top-up with its balance (units - drawn); expires_at null when never.
boost::json::object TopupJson(const engine::TopupRecord& t);

boost::json::object UsageJson(const Catalog& cat, const engine::UsageView& u);
/// Meter m's entry of UsageJson's "meters" without its limit parts and
/// forecast: kind, used, limit, remaining, percentage, band, enforced, on_limit.
boost::json::object MeterUsageJson(const Catalog& cat, const engine::UsageView& u, MeterId m);

boost::json::object TenantJson(const Catalog& cat, const engine::TenantView& t);

/// null for std::nullopt.
boost::json::value OptionalNumber(std::optional<uint64_t> v);

}  // namespace quotum::http
