// Engine: the scheduled usage reports (usage_reports.h), made by the
// scheduled jobs once per tenant and range.
#include "absl/container/flat_hash_set.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/events.h"
#include "quotum/engine/usage_reports.h"

namespace quotum::engine {

absl::StatusOr<absl::flat_hash_set<std::string>> Engine::TenantsWantingReport(
    std::string_view type, const DayRange& range) {
  // One read of every live webhook, then one look-up per tenant that asks.
  absl::StatusOr<std::vector<WebhookRecord>> hooks = store_->Webhooks("");
  if (!hooks.ok()) return hooks.status();
  absl::flat_hash_set<std::string> out;
  for (const WebhookRecord& w : *hooks) {
    if (!WebhookWants(w, type) || out.contains(w.tenant_id)) continue;
    absl::StatusOr<std::optional<EventRecord>> made =
        store_->FindEvent(ReportEventId(w.tenant_id, type, range));
    if (!made.ok()) return made.status();
    if (!made->has_value()) out.insert(w.tenant_id);
  }
  return out;
}

absl::Status Engine::MakeReports(std::string_view type, const DayRange& range) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::Time range_end = absl::FromCivil(range.last + 1, utc);
  absl::StatusOr<absl::flat_hash_set<std::string>> wanted = TenantsWantingReport(type, range);
  if (!wanted.ok()) return wanted.status();
  if (wanted->empty()) return absl::OkStatus();
  if (absl::Status s = AdoptEveryTenant(); !s.ok()) return s;
  CommitBatch b;
  for (TenantState* t : CommittedTenants()) {
    if (!wanted->contains(t->id)) continue;
    {
      MutexLock lock(&t->mu);
      const absl::Time created = t->created_at;
      if (created >= range_end) continue;  // it did not exist then
    }
    absl::StatusOr<UsageView> usage = UsageOf(*t);
    if (!usage.ok()) return usage.status();
    ReportInput in{type, range, clock_->Now(), &*usage, messages_sent_meter_, {}, {}};
    auto days = store_->DailyByChannel(t->id, range.first, range.last);
    if (!days.ok()) return days.status();
    in.days = std::move(*days);
    auto alerts = store_->Alerts(t->id, absl::FromCivil(range.first, utc), range_end);
    if (!alerts.ok()) return alerts.status();
    in.alerts = std::move(*alerts);
    b.events.push_back(ReportEvent(*opts_.catalog, in));
  }
  if (b.events.empty()) return absl::OkStatus();
  return CommitOutbox(std::move(b));
}

}  // namespace quotum::engine
