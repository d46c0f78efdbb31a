#include "quotum/http/render.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "quotum/core/quota.h"
#include "quotum/core/string_views.h"

namespace quotum::http {

boost::json::value OptionalNumber(std::optional<uint64_t> v) {
  if (!v) return nullptr;
  return *v;
}

boost::json::object DecisionJson(const engine::Decision& d) {
  boost::json::object o;
  o["allowed"] = d.allowed;
  o["consumed"] = d.consumed;
  o["requested"] = d.requested;
  o["remaining"] = d.limit ? boost::json::value(d.remaining) : boost::json::value(nullptr);
  o["limit"] = OptionalNumber(d.limit);
  o["reset_at"] = FormatRfc3339(d.reset_at);
  o["meter"] = d.meter;
  if (d.overage > 0) o["overage"] = d.overage;
  if (d.replayed) o["replayed"] = true;
  return o;
}

void AddQuotaHeaders(Reply& r, const engine::Decision& d, absl::Time now, absl::Time period_start) {
  if (!d.limit) return;
  const int64_t reset = absl::ToUnixSeconds(d.reset_at);
  const int64_t secs_left = std::max<int64_t>(0, absl::ToInt64Seconds(d.reset_at - now));
  const int64_t window = absl::ToInt64Seconds(d.reset_at - period_start);
  r.Header("X-RateLimit-Limit", Cat(*d.limit));
  r.Header("X-RateLimit-Remaining", Cat(d.remaining));
  r.Header("X-RateLimit-Reset", Cat(reset));
  r.Header("RateLimit-Policy", Cat("\"quota\";q=", *d.limit, ";w=", window));
  r.Header("RateLimit", Cat("\"quota\";r=", d.remaining, ";t=", secs_left));
}

Reply QuotaExceededReply(const engine::Decision& d, absl::Time now, absl::Time period_start) {
  const int64_t retry =
      std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(d.reset_at - now, absl::Seconds(1))));
  boost::json::object o;
  o["success"] = false;
  o["error"] = Cat("Quota exceeded for ", d.meter, ": limit ", d.limit.value_or(0),
                   " per billing period, ", d.remaining, " left, ", d.requested,
                   " requested. The limit resets at ", FormatRfc3339(d.reset_at), ".");
  o["retryAfter"] = retry;
  o["code"] = "quota_exceeded";
  o["meter"] = d.meter;
  o["limit"] = OptionalNumber(d.limit);
  o["remaining"] = d.remaining;
  o["reset_at"] = FormatRfc3339(d.reset_at);
  Reply r = JsonReply(429, o);
  r.Header("Retry-After", Cat(retry));
  AddQuotaHeaders(r, d, now, period_start);
  return r;
}

boost::json::object TenantJson(const Catalog& cat, const engine::TenantView& t) {
  boost::json::object o;
  o["id"] = t.id;
  o["name"] = t.name;
  o["plan"] = t.plan;
  o["subscription_start"] = FormatRfc3339(t.subscription_start);
  o["created_at"] = FormatRfc3339(t.created_at);
  o["period"] = t.period.Label();
  o["period_start"] = FormatRfc3339(t.period.start);
  o["period_end"] = FormatRfc3339(t.period.end);
  boost::json::object overrides;
  for (size_t m = 0; m < t.overrides.size(); ++m) {
    if (t.overrides[m]) overrides[cat.meters[m].name] = *t.overrides[m];
  }
  o["limit_overrides"] = std::move(overrides);
  return o;
}

boost::json::object UsageJson(const Catalog& cat, const engine::UsageView& u) {
  auto id = [&](absl::string_view name) { return *cat.FindMeter(name); };
  auto used = [&](absl::string_view name) { return u.used[id(name)]; };
  auto limit = [&](absl::string_view name) { return u.limits[id(name)]; };
  const auto& period = u.tenant.period;
  boost::json::object o;
  o["tenant_id"] = u.tenant.id;
  o["plan"] = u.tenant.plan;
  o["period"] = period.Label();
  o["period_start"] = FormatRfc3339(period.start);
  o["period_end"] = FormatRfc3339(period.end);
  o["messages_sent"] = used(meters::kMessagesSent);
  o["messages_received"] = used(meters::kMessagesReceived);
  // As in the seed: total_messages counts what the plan limit applies to.
  o["total_messages"] = used(meters::kMessagesSent);
  o["leads_detected"] = used(meters::kLeadsDetected);
  o["api_calls"] = used(meters::kApiCalls);
  o["limit_messages"] = OptionalNumber(limit(meters::kMessagesSent));
  o["limit_groups"] = OptionalNumber(limit(meters::kGroupsActive));
  o["limit_sessions"] = OptionalNumber(limit(meters::kSessionsActive));
  o["groups_active"] = used(meters::kGroupsActive);
  o["sessions_active"] = used(meters::kSessionsActive);
  o["usage_percentage"] =
      UsagePercentage(used(meters::kMessagesSent), limit(meters::kMessagesSent));
  o["band"] = ToStd(BandName(BandFor(
      UsagePercentage(used(meters::kMessagesSent), limit(meters::kMessagesSent)), u.plan->bands)));
  boost::json::object all;
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    const MeterDef& def = cat.meters[m];
    boost::json::object e;
    e["kind"] = def.kind == MeterKind::kCounter ? "counter" : "gauge";
    e["used"] = u.used[m];
    e["limit"] = OptionalNumber(u.limits[m]);
    if (u.limits[m]) {
      e["remaining"] = u.used[m] >= *u.limits[m] ? 0 : *u.limits[m] - u.used[m];
    } else {
      e["remaining"] = nullptr;
    }
    double pct = UsagePercentage(u.used[m], u.limits[m]);
    e["percentage"] = pct;
    e["band"] = ToStd(BandName(BandFor(pct, u.plan->bands)));
    e["enforced"] = u.limits[m].has_value();
    e["on_limit"] = ToStd(OnLimitName(u.plan->on_limit[m]));
    all[def.name] = std::move(e);
  }
  o["meters"] = std::move(all);
  o["addons"] = boost::json::array();
  o["pending_plan_change"] = nullptr;
  return o;
}

}  // namespace quotum::http
