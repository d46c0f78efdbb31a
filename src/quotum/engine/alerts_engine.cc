// Engine: resolving alerts when a tenant's limits grow (plan change, add-on,
// admin override). Reaching them is part of each decision (metering.cc and,
// scale-out, the facts drain).
#include "quotum/engine/alerts.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

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
    const std::optional<uint64_t> limit = EffectiveLimit(t, *m);
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

}  // namespace quotum::engine
