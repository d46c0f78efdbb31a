#include "quotum/http/render.h"

#include <boost/json/serialize.hpp>
#include <limits>

#include "absl/strings/str_cat.h"
#include "quotum/core/quota.h"
#include "quotum/core/string_views.h"

namespace quotum::http {

boost::json::value OptionalNumber(std::optional<uint64_t> v) {
  if (!v) return nullptr;
  return *v;
}

boost::json::value TimeOrNull(const std::optional<absl::Time>& t) {
  if (!t) return nullptr;
  return boost::json::value(FormatRfc3339(*t));
}

boost::json::object CreditsJson(const engine::CreditsUse& c) {
  boost::json::object o;
  o["per_message"] = c.per_unit;
  o["charged"] = c.charged;
  o["limit"] = OptionalNumber(c.limit);
  o["remaining"] = c.limit ? boost::json::value(c.remaining) : boost::json::value(nullptr);
  return o;
}

boost::json::object ReservationJson(const engine::ReservationUse& r) {
  using State = engine::ReservationUse::State;
  boost::json::object o;
  o["id"] = r.id;
  o["state"] = r.state == State::kHeld        ? "held"
               : r.state == State::kCommitted ? "committed"
                                              : "released";
  o["units"] = r.units;
  o["expires_at"] = FormatRfc3339(r.expires_at);
  return o;
}

boost::json::object DecisionJson(const engine::Decision& d) {
  boost::json::object o;
  o["allowed"] = d.allowed;
  o["consumed"] = d.consumed;
  o["requested"] = d.requested;
  // Unknown when admitted unchecked (fail-open).
  o["remaining"] =
      d.limit && !d.fail_open ? boost::json::value(d.remaining) : boost::json::value(nullptr);
  o["limit"] = OptionalNumber(d.limit);
  o["reset_at"] = FormatRfc3339(d.reset_at);
  o["meter"] = d.meter;
  if (d.overage > 0) o["overage"] = d.overage;
  if (d.replayed) o["replayed"] = true;
  if (d.fail_open) o["fail_open"] = true;
  if (d.late) {
    o["late"] = true;
    o["period_start"] = FormatRfc3339(d.period_start);
  }
  if (d.credits) o["credits"] = CreditsJson(*d.credits);
  if (d.reservation) o["reservation"] = ReservationJson(*d.reservation);
  return o;
}

namespace {

struct Policy {
  std::string name;
  uint64_t limit = 0;
  uint64_t remaining = 0;
  int64_t window_s = 0;
  int64_t reset_s = 0;     // seconds from now
  int64_t reset_unix = 0;  // X-RateLimit-Reset
};

int64_t CeilSeconds(int64_t ns) { return ns <= 0 ? 0 : (ns + 999'999'999) / 1'000'000'000; }

bool HasQuota(const engine::Decision& d) {
  return d.limit.has_value() && d.reset_at > d.period_start;
}

std::vector<Policy> PoliciesOf(const engine::Decision& d, absl::Time now) {
  std::vector<Policy> out;
  const int64_t now_unix = absl::ToUnixSeconds(now);
  for (const auto& o : d.rates) {
    Policy p;
    p.name = ratelimit::CategoryName(o.category);
    p.limit = o.limit;
    p.remaining = o.allowed || o.shadow ? o.remaining : 0;
    p.window_s = CeilSeconds(o.window_ns);
    p.reset_s = CeilSeconds(o.reset_ns);
    p.reset_unix = now_unix + p.reset_s;
    out.push_back(std::move(p));
  }
  if (HasQuota(d)) {
    Policy p;
    p.name = "quota";
    p.limit = *d.limit;
    p.remaining = d.remaining;
    p.window_s = absl::ToInt64Seconds(d.reset_at - d.period_start);
    p.reset_s =
        std::max<int64_t>(0, absl::ToInt64Seconds(absl::Ceil(d.reset_at - now, absl::Seconds(1))));
    p.reset_unix = absl::ToUnixSeconds(d.reset_at);
    out.push_back(std::move(p));
  }
  return out;
}

int64_t RetryAfterSeconds(const engine::Decision& d, absl::Time now) {
  if (d.reason == engine::DenyReason::kQuotaExceeded && d.retry_ns == 0) {
    return std::max<int64_t>(1,
                             absl::ToInt64Seconds(absl::Ceil(d.reset_at - now, absl::Seconds(1))));
  }
  return std::max<int64_t>(1, CeilSeconds(d.retry_ns));
}

}  // namespace

std::string DecisionBody(const engine::Decision& d) {
  std::string out;
  out.reserve(192);
  absl::StrAppend(&out, "{\"allowed\":", d.allowed ? "true" : "false", ",\"consumed\":", d.consumed,
                  ",\"requested\":", d.requested, ",\"remaining\":");
  if (d.limit) {
    // Unknown when admitted unchecked (fail-open).
    if (d.fail_open) {
      absl::StrAppend(&out, "null,\"limit\":", *d.limit);
    } else {
      absl::StrAppend(&out, d.remaining, ",\"limit\":", *d.limit);
    }
  } else {
    out += "null,\"limit\":null";
  }
  absl::StrAppend(&out, ",\"reset_at\":\"", FormatRfc3339(d.reset_at), "\",\"meter\":\"",
                  ToAbsl(d.meter), "\"");
  if (d.overage > 0) absl::StrAppend(&out, ",\"overage\":", d.overage);
  if (d.replayed) out += ",\"replayed\":true";
  if (d.fail_open) out += ",\"fail_open\":true";
  if (d.late) {
    absl::StrAppend(&out, ",\"late\":true,\"period_start\":\"", FormatRfc3339(d.period_start),
                    "\"");
  }
  if (d.credits) {
    absl::StrAppend(&out, ",\"credits\":", boost::json::serialize(CreditsJson(*d.credits)));
  }
  out += "}";
  return out;
}

void AddDecisionHeaders(Reply& r, const engine::Decision& d, absl::Time now) {
  std::vector<Policy> pols = PoliciesOf(d, now);
  if (!d.shadow_denied.empty()) {
    std::string v;
    for (const auto& s : d.shadow_denied) v += (v.empty() ? "" : ", ") + s;
    r.Header("X-Quotum-Shadow", v);
  }
  if (pols.empty()) return;
  const Policy* chosen = &pols.front();
  if (!d.allowed) {
    for (const auto& p : pols) {
      if (p.name == d.rule || (p.name == "quota" && d.rule == d.meter)) chosen = &p;
    }
  } else {
    for (const auto& p : pols) {
      if (p.remaining < chosen->remaining) chosen = &p;
    }
  }
  r.Header("X-RateLimit-Limit", Cat(chosen->limit));
  r.Header("X-RateLimit-Remaining", Cat(chosen->remaining));
  r.Header("X-RateLimit-Reset", Cat(chosen->reset_unix));
  std::string policy, state;
  for (const auto& p : pols) {
    if (!policy.empty()) {
      policy += ", ";
      state += ", ";
    }
    policy += Cat("\"", p.name, "\";q=", p.limit, ";w=", p.window_s);
    state += Cat("\"", p.name, "\";r=", p.remaining, ";t=", p.reset_s);
  }
  r.Header("RateLimit-Policy", policy);
  r.Header("RateLimit", state);
}

Reply DenialReply(const engine::Decision& d, absl::Time now) {
  const int64_t retry = RetryAfterSeconds(d, now);
  boost::json::object o;
  o["success"] = false;
  switch (d.reason) {
    case engine::DenyReason::kRateLimited:
      // Exactly the seed's shape.
      o["error"] = Cat("Rate limit exceeded. Please wait ", retry, " seconds before trying again.");
      o["retryAfter"] = retry;
      o["code"] = "rate_limited";
      break;
    case engine::DenyReason::kWarmupLimit:
      o["error"] = Cat("Warm-up limit reached: this session's number may send ",
                       d.warmup_cap.value_or(0), " messages today and has sent ", d.warmup_used,
                       ". Please wait ", retry, " seconds before trying again.");
      o["retryAfter"] = retry;
      o["code"] = "warmup_limit";
      o["cap"] = d.warmup_cap.value_or(0);
      o["sent_today"] = d.warmup_used;
      break;
    case engine::DenyReason::kTierLimit:
      o["error"] = Cat("Messaging tier limit reached: this session may message ",
                       d.tier && d.tier->limit ? *d.tier->limit : 0,
                       " unique recipients in 24 hours and has messaged ",
                       d.tier ? d.tier->used : 0, ". Please wait ", retry,
                       " seconds before trying again, or message recipients of the last 24 hours.");
      o["retryAfter"] = retry;
      o["code"] = "tier_limit";
      o["rule"] = "tier";
      o["limit"] = d.tier && d.tier->limit ? boost::json::value(*d.tier->limit) : nullptr;
      o["used_24h"] = d.tier ? d.tier->used : 0;
      o["level"] = d.tier ? d.tier->level : 0;
      break;
    default:
      if (d.credits && d.rule == meters::kCredits) {
        const engine::CreditsUse& c = *d.credits;
        o["error"] = Cat("Not enough credits: ", d.requested, " message(s) at ", c.per_unit,
                         " credits each; ", c.remaining, " of the ", c.limit.value_or(0),
                         " credits of this billing period are left. The limit resets at ",
                         FormatRfc3339(d.reset_at), ".");
        o["retryAfter"] = retry;
        o["code"] = "quota_exceeded";
        o["meter"] = meters::kCredits;
        o["limit"] = OptionalNumber(c.limit);
        o["remaining"] = c.remaining;
        o["reset_at"] = FormatRfc3339(d.reset_at);
        break;
      }
      if (HasQuota(d)) {
        o["error"] = Cat("Quota exceeded for ", d.meter, ": limit ", d.limit.value_or(0),
                         " per billing period, ", d.remaining, " left, ", d.requested,
                         " requested. The limit resets at ", FormatRfc3339(d.reset_at), ".");
      } else {
        o["error"] = Cat("Concurrent limit reached for ", d.meter, ": ", d.limit.value_or(0),
                         " allowed at once. Free one (stop a session, delete a group) or "
                         "upgrade the plan.");
      }
      o["retryAfter"] = retry;
      o["code"] = "quota_exceeded";
      o["meter"] = d.meter;
      o["limit"] = OptionalNumber(d.limit);
      o["remaining"] = d.remaining;
      if (HasQuota(d)) o["reset_at"] = FormatRfc3339(d.reset_at);
      break;
  }
  if (d.reservation && d.reservation->state != engine::ReservationUse::State::kHeld) {
    // A commit of more than was held that does not fit: nothing changed.
    o["reservation_id"] = d.reservation->id;
    o["error"] = Cat(o["error"].as_string().c_str(), " The reservation still holds its ",
                     d.reservation->units, " units.");
  }
  Reply r = JsonReply(429, o);
  r.Header("Retry-After", Cat(retry));
  r.Header("X-Quotum-Rule", d.rule);
  AddDecisionHeaders(r, d, now);
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

boost::json::value PendingPlanJson(const std::optional<engine::SubscriptionChange>& c) {
  if (!c) return nullptr;
  return boost::json::object{{"id", c->id},
                             {"plan", c->to_plan},
                             {"requested_at", FormatRfc3339(c->requested_at)},
                             {"effective_at", FormatRfc3339(c->effective_at)}};
}

boost::json::object PlanJson(const Catalog& cat, const Plan& p) {
  boost::json::object o;
  o["name"] = p.name;
  o["display_name"] = p.display_name;
  o["price_cents"] = p.price_cents;
  o["interval"] = p.interval.unit == BillingInterval::Unit::kMonth
                      ? std::string("month")
                      : absl::StrCat(p.interval.days, "d");
  o["anchor"] = p.interval.calendar ? "calendar" : "subscription";
  boost::json::object limits;
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    if (p.limits[m]) limits[cat.meters[m].name] = *p.limits[m];
  }
  o["limits"] = std::move(limits);
  o["rate_limit_profile"] = p.rate_limit_profile;
  boost::json::array thresholds;
  for (int t : p.alert_thresholds) thresholds.push_back(t);
  o["alert_thresholds"] = std::move(thresholds);
  o["bands"] = boost::json::object{{"yellow", p.bands.yellow}, {"red", p.bands.red}};
  boost::json::array packs;
  for (const AddonPack& a : cat.addons) {
    packs.push_back(boost::json::object{
        {"meter", a.meter}, {"units", a.units}, {"price_cents", a.price_cents}});
  }
  o["addon_packs"] = std::move(packs);
  boost::json::array topups;
  for (const AddonPack& a : cat.topups) {
    topups.push_back(boost::json::object{
        {"meter", a.meter}, {"units", a.units}, {"price_cents", a.price_cents}});
  }
  o["topup_packs"] = std::move(topups);
  return o;
}

boost::json::object AddonJson(const engine::AddonRecord& a) {
  return {{"id", a.id},
          {"meter", a.meter},
          {"units", a.units},
          {"price_cents", a.price_cents},
          {"started_at", FormatRfc3339(a.started_at)},
          {"ends_at", TimeOrNull(a.ends_at)}};
}

boost::json::object TopupJson(const engine::TopupRecord& t) {
  return {{"id", t.id},
          {"meter", t.meter},
          {"units", t.units},
          {"balance", t.Left()},
          {"price_cents", t.price_cents},
          {"bought_at", FormatRfc3339(t.bought_at)},
          {"expires_at", t.expires_at == absl::InfiniteFuture()
                             ? boost::json::value(nullptr)
                             : boost::json::value(FormatRfc3339(t.expires_at))}};
}

namespace {

boost::json::value ForecastJson(const std::optional<Forecast>& f) {
  if (!f) return nullptr;
  boost::json::object o{{"projected_period_end", f->projected_period_end}, {"method", f->method}};
  o["projected_percentage"] =
      f->projected_percentage ? boost::json::value(*f->projected_percentage) : nullptr;
  o["limit_reached_at"] = TimeOrNull(f->limit_reached_at);
  return o;
}

// What meter m's effective limit is made of (engine::LimitOf): the plan's
// limit or the admin's override that replaces it, plus the add-ons' units.
// Null for an unlimited meter.
boost::json::value LimitPartsJson(const Catalog& cat, const engine::UsageView& u, MeterId m) {
  if (!u.limits[m]) return nullptr;
  const std::vector<std::optional<uint64_t>>& overrides = u.tenant.overrides;
  uint64_t addons = 0;
  for (const engine::AddonRecord& a : u.addons) {
    if (a.meter == cat.meters[m].name) addons += a.units;
  }
  const std::optional<uint64_t> own =
      m < overrides.size() && overrides[m] ? overrides[m] : u.plan->limits[m];
  // What the top-ups add: their unused units, and those drawn this period.
  const uint64_t base = own.value_or(0) + addons;
  return boost::json::object{
      {"plan", OptionalNumber(u.plan->limits[m])},
      {"override", OptionalNumber(m < overrides.size() ? overrides[m] : std::nullopt)},
      {"addons", addons},
      {"topups", *u.limits[m] > base ? *u.limits[m] - base : 0}};
}

}  // namespace

boost::json::object MeterUsageJson(const Catalog& cat, const engine::UsageView& u, MeterId m) {
  boost::json::object e;
  e["kind"] = cat.meters[m].kind == MeterKind::kCounter ? "counter" : "gauge";
  e["used"] = u.used[m];
  e["limit"] = OptionalNumber(u.limits[m]);
  if (u.limits[m]) {
    e["remaining"] = u.used[m] >= *u.limits[m] ? 0 : *u.limits[m] - u.used[m];
  } else {
    e["remaining"] = nullptr;
  }
  const double pct = UsagePercentage(u.used[m], u.limits[m]);
  e["percentage"] = pct;
  e["band"] = ToStd(BandName(BandFor(pct, u.plan->bands)));
  e["enforced"] = u.limits[m].has_value();
  e["on_limit"] = ToStd(OnLimitName(u.plan->on_limit[m]));
  return e;
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
  // "aggregate": scale-out mode answered from the cold store while Redis was away.
  o["source"] = u.from_aggregate ? "aggregate" : "live";
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
    boost::json::object e = MeterUsageJson(cat, u, m);
    e["limit_parts"] = LimitPartsJson(cat, u, m);
    if (cat.meters[m].kind == MeterKind::kCounter) {
      e["forecast"] = m < u.forecasts.size() ? ForecastJson(u.forecasts[m]) : nullptr;
    }
    all[cat.meters[m].name] = std::move(e);
  }
  o["meters"] = std::move(all);
  // The primary meter's forecast, with the plan that fits every projection.
  boost::json::value forecast = id(meters::kMessagesSent) < u.forecasts.size()
                                    ? ForecastJson(u.forecasts[id(meters::kMessagesSent)])
                                    : nullptr;
  if (forecast.is_object()) {
    forecast.as_object()["recommended_plan"] =
        u.recommended_plan ? boost::json::value(*u.recommended_plan) : nullptr;
    forecast.as_object()["headroom_percent"] = 20;
  }
  o["forecast"] = std::move(forecast);
  boost::json::array addons;
  for (const engine::AddonRecord& a : u.addons) addons.push_back(AddonJson(a));
  o["addons"] = std::move(addons);
  boost::json::array topups;
  for (const engine::TopupRecord& t : u.topups) topups.push_back(TopupJson(t));
  o["topups"] = std::move(topups);
  o["pending_plan"] = PendingPlanJson(u.pending_plan);
  return o;
}

}  // namespace quotum::http
