#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "absl/time/time.h"
#include "quotum/engine/decision.h"
#include "quotum/engine/engine.h"
#include "quotum/http/reply.h"

namespace quotum::http {

/// {"allowed","consumed","remaining","limit","reset_at",...} of a decision.
/// Unlimited meters show "limit": null and "remaining": null.
boost::json::object DecisionJson(const engine::Decision& d);

/// X-RateLimit-* and the IETF RateLimit-Policy / RateLimit fields for the
/// billing-period quota of a decision (policy name "quota").
void AddQuotaHeaders(Reply& r, const engine::Decision& d, absl::Time now, absl::Time period_start);

/// The 429 for a period quota: Retry-After and X-RateLimit-Reset = period end.
Reply QuotaExceededReply(const engine::Decision& d, absl::Time now, absl::Time period_start);

/// usage/current body.
boost::json::object UsageJson(const Catalog& cat, const engine::UsageView& u);

boost::json::object TenantJson(const Catalog& cat, const engine::TenantView& t);

/// null for std::nullopt.
boost::json::value OptionalNumber(std::optional<uint64_t> v);

}  // namespace quotum::http
