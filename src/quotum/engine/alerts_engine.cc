// Engine: resolving alerts when a tenant's limits grow (plan change, add-on,
// admin override). Reaching them is part of each decision (metering.cc and,
// scale-out, the facts drain).
#include <utility>

#include "quotum/engine/alerts.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/events.h"

namespace quotum::engine {

absl::StatusOr<std::vector<AlertRecord>> Engine::Alerts(const Principal& who, absl::Time from,
                                                        absl::Time to) {
  auto rows = store_->Alerts(who.tenant->id, from, to);
  if (!rows.ok()) return StoreUnavailable("The alerts");
  return rows;
}

absl::StatusOr<Engine::FiredAlerts> Engine::ReadFiredAlerts(TenantState& t) {
  FiredAlerts f;
  {
    MutexLock lock(&t.mu);
    Touch(t, clock_->Now());
    f.period_start = t.period.start;
  }
  absl::StatusOr<std::vector<AlertRecord>> alerts =
      store_->Alerts(t.id, f.period_start, absl::InfiniteFuture());
  if (!alerts.ok()) return StoreUnavailable("The alerts");
  std::erase_if(*alerts, [&](const AlertRecord& a) {
    return a.period_start != f.period_start || a.resolved_at.has_value();
  });
  f.alerts = std::move(*alerts);
  if (!opts_.shared_ledger || f.alerts.empty()) return f;
  if (absl::Status s = RefreshSharedTopups(t); !s.ok()) return s;
  std::vector<std::string> meters;
  for (const AlertRecord& a : f.alerts) meters.push_back(a.meter);
  absl::StatusOr<std::vector<uint64_t>> used =
      opts_.shared_ledger->Counters(t.id, f.period_start, meters);
  if (!used.ok()) return StoreUnavailable("The counter store");
  f.shared_used = std::move(*used);
  return f;
}

std::vector<AlertRecord> Engine::ResolvedLocked(const TenantState& t, const FiredAlerts& fired,
                                                absl::Time now) const {
  if (fired.period_start != t.period.start) return {};  // a new period has no fired alerts
  std::vector<AlertRecord> out;
  for (size_t i = 0; i < fired.alerts.size(); ++i) {
    const AlertRecord& a = fired.alerts[i];
    const std::optional<MeterId> m = opts_.catalog->FindMeter(a.meter);
    if (!m) continue;
    const uint64_t used = fired.shared_used.empty() ? t.used[*m] : fired.shared_used[i];
    const std::optional<uint64_t> limit = LimitWithTopupsOf(t, *m, used, now);
    std::vector<AlertRecord> one = ResolvedAlerts(
        {a},
        [&](std::string_view) {
          return MeterNow{used, limit};
        },
        now);
    out.insert(out.end(), one.begin(), one.end());
  }
  return out;
}

namespace {

// usage.forecast_exceeds_limit for meter `m` of `u`.
EventRecord ForecastEvent(const Catalog& cat, const UsageView& u, MeterId m, absl::Time now) {
  const Forecast& f = *u.forecasts[m];
  const std::string& meter = cat.meters[m].name;
  const BillingPeriod& p = u.tenant.period;
  std::vector<EventField> fields{
      {"meter", meter, false},
      {"projected_period_end", absl::StrCat(f.projected_period_end), true},
      {"limit", absl::StrCat(*u.limits[m]), true},
      {"used", absl::StrCat(u.used[m]), true},
      {"method", f.method, false},
      {"period", p.Label(), false},
      {"period_end", FormatRfc3339(p.end), false}};
  if (f.limit_reached_at)
    fields.push_back({"limit_reached_at", FormatRfc3339(*f.limit_reached_at), false});
  return EventRecord{u.tenant.id,
                     "usage.forecast_exceeds_limit",
                     meter,
                     absl::StrCat(meter, " is projected to reach ", f.projected_period_end,
                                  " by the period's end, over its limit of ", *u.limits[m]),
                     now,
                     EventId({u.tenant.id, "usage.forecast_exceeds_limit", meter,
                              absl::StrCat(absl::ToUnixSeconds(p.start))}),
                     std::move(fields)};
}

}  // namespace

absl::Status Engine::CheckForecasts(const std::function<bool()>& stop) {
  const Catalog& cat = *opts_.catalog;
  FoldAcknowledged();  // once for the round, not once per tenant
  CommitBatch b;
  for (TenantState* t : CommittedTenants()) {
    if (stop && stop()) break;
    absl::StatusOr<UsageView> u = CountersOf(*t);
    if (!u.ok()) return u.status();
    ProjectInto(*u);
    for (MeterId m = 0; m < u->forecasts.size(); ++m) {
      if (!u->forecasts[m] || !u->limits[m] || !ForecastExceedsLimit(*u->forecasts[m])) continue;
      b.events.push_back(ForecastEvent(cat, *u, m, clock_->Now()));
    }
    if (b.events.size() >= kForecastEventsPerCommit) {
      if (absl::Status s = CommitOutbox(std::exchange(b, CommitBatch())); !s.ok()) return s;
    }
  }
  if (b.events.empty()) return absl::OkStatus();
  return CommitOutbox(std::move(b));
}

}  // namespace quotum::engine
