#include "quotum/engine/tenant_risk.h"

#include <algorithm>

#include "quotum/core/quota.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/tenant_state.h"

namespace quotum::engine {

RiskScore ScoreRisk(const Catalog& cat, const std::vector<uint64_t>& used,
                    const std::vector<std::optional<uint64_t>>& limits,
                    const std::vector<std::optional<Forecast>>& forecasts) {
  RiskScore best;
  bool counter_seen = false;
  bool limited_seen = false;
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    if (cat.meters[m].kind != MeterKind::kCounter) continue;
    if (!counter_seen) best.meter = m;
    counter_seen = true;
    if (!limits[m]) continue;
    const double now = UsagePercentage(used[m], limits[m]);
    if (!limited_seen || now > best.percent) best = {now, m, false};
    limited_seen = true;
    if (m >= forecasts.size() || !forecasts[m]) continue;
    const std::optional<double>& projected = forecasts[m]->projected_percentage;
    if (projected && *projected > best.percent) best = {*projected, m, true};
  }
  return best;
}

absl::StatusOr<RiskReport> Engine::TenantsAtRisk(size_t shown) {
  if (absl::Status s = AdoptEveryTenant(); !s.ok()) return StoreUnavailable("The tenants");
  const Catalog& cat = *opts_.catalog;
  // First look: what every tenant used against its limits.
  std::vector<std::pair<double, TenantState*>> ranked;
  for (TenantState* t : CommittedTenants()) {
    absl::StatusOr<UsageView> u = CountersOf(*t);
    if (!u.ok()) return u.status();
    ranked.emplace_back(ScoreRisk(cat, u->used, u->limits, {}).percent, t);
  }
  RiskReport report;
  report.considered = ranked.size();
  const size_t candidates = std::min(ranked.size(), shown * kRiskCandidatesPerShown);
  std::partial_sort(ranked.begin(), ranked.begin() + candidates, ranked.end(),
                    [](const auto& a, const auto& b) {
                      return a.first != b.first ? a.first > b.first : a.second->id < b.second->id;
                    });
  // Second look, for the candidates: forecasts and the period's alerts.
  for (size_t i = 0; i < candidates; ++i) {
    TenantState& t = *ranked[i].second;
    absl::StatusOr<UsageView> u = UsageOf(t);
    if (!u.ok()) return u.status();
    absl::StatusOr<std::vector<AlertRecord>> alerts =
        store_->Alerts(t.id, u->tenant.period.start, absl::InfiniteFuture());
    if (!alerts.ok()) return StoreUnavailable("The alerts");
    TenantRisk r;
    r.score = ScoreRisk(cat, u->used, u->limits, u->forecasts);
    r.alerts = alerts->size();
    r.usage = *std::move(u);
    report.tenants.push_back(std::move(r));
  }
  std::sort(report.tenants.begin(), report.tenants.end(),
            [](const TenantRisk& a, const TenantRisk& b) {
              if (a.score.percent != b.score.percent) return a.score.percent > b.score.percent;
              if (a.alerts != b.alerts) return a.alerts > b.alerts;
              return a.usage.tenant.id < b.usage.tenant.id;
            });
  if (report.tenants.size() > shown) report.tenants.resize(shown);
  return report;
}

}  // namespace quotum::engine
