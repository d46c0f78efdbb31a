#include "quotum/engine/alerts.h"

#include "absl/strings/str_cat.h"
#include "quotum/core/thresholds.h"
#include "quotum/engine/events.h"

namespace quotum::engine {
namespace {

std::vector<EventField> FieldsOf(const AlertRecord& a) {
  return {{"meter", a.meter, false},
          {"threshold", absl::StrCat(a.threshold), true},
          {"value", absl::StrCat(a.value), true},
          {"limit", absl::StrCat(a.limit), true},
          {"period", BillingPeriod{a.period_start, a.period_end}.Label(), false},
          {"period_start", FormatRfc3339(a.period_start), false},
          {"period_end", FormatRfc3339(a.period_end), false}};
}

std::string KeyOf(const AlertRecord& a) {
  return absl::StrCat(a.meter, "/", absl::ToUnixSeconds(a.period_start), "/", a.threshold);
}

}  // namespace

std::vector<AlertRecord> AlertsOfCharge(const ChargeOfMeter& c) {
  std::vector<AlertRecord> out;
  if (!c.limit || c.charged == 0) return out;
  const uint64_t after = c.before + c.charged;
  for (int t : CrossedThresholds(c.before, after, *c.limit, c.thresholds)) {
    out.push_back(AlertRecord{std::string(c.tenant_id), std::string(c.meter), c.period.start,
                              c.period.end, t, after, *c.limit, c.at, std::nullopt});
  }
  return out;
}

EventRecord ReachedEvent(const AlertRecord& a) {
  EventRecord e{a.tenant_id,
                "usage.threshold_reached",
                a.meter,
                absl::StrCat(a.meter, " reached ", a.threshold, "% of its limit (", a.value, " of ",
                             a.limit, ")"),
                a.at,
                EventId({a.tenant_id, "usage.threshold_reached", KeyOf(a)}),
                FieldsOf(a)};
  return e;
}

// A resolved alert's limit is the grown one; 0 stands for unlimited now, and
// the event then has no "limit".
EventRecord ResolvedEvent(const AlertRecord& a) {
  const absl::Time at = a.resolved_at.value_or(a.at);
  EventRecord e{
      a.tenant_id,
      "usage.threshold_resolved",
      a.meter,
      absl::StrCat(a.meter, " is below ", a.threshold, "% of its limit again: the limit grew"),
      at,
      EventId({a.tenant_id, "usage.threshold_resolved", KeyOf(a)}),
      FieldsOf(a)};
  if (a.limit == 0) {
    std::erase_if(e.fields, [](const EventField& f) { return f.name == "limit"; });
  }
  return e;
}

void AppendReached(const std::vector<AlertRecord>& alerts, CommitBatch& b) {
  for (const AlertRecord& a : alerts) {
    b.alerts.push_back(a);
    b.events.push_back(ReachedEvent(a));
  }
}

std::vector<AlertRecord> ResolvedAlerts(const std::vector<AlertRecord>& fired,
                                        absl::FunctionRef<MeterNow(std::string_view meter)> now_of,
                                        absl::Time at) {
  std::vector<AlertRecord> out;
  for (const AlertRecord& a : fired) {
    if (a.resolved_at) continue;
    const MeterNow m = now_of(a.meter);
    // Unlimited now: no threshold of it holds.
    if (m.limit && ThresholdHolds(m.used, *m.limit, a.threshold)) continue;
    if (m.limit && *m.limit <= a.limit) continue;  // only a grown limit resolves
    AlertRecord r = a;
    r.limit = m.limit.value_or(0);
    r.value = m.used;
    r.resolved_at = at;
    out.push_back(std::move(r));
  }
  return out;
}

void AppendResolved(const std::vector<AlertRecord>& resolved, CommitBatch& b) {
  for (const AlertRecord& a : resolved) {
    b.resolved_alerts.push_back(a);
    b.events.push_back(ResolvedEvent(a));
  }
}

}  // namespace quotum::engine
