#include "quotum/engine/usage_facts.h"

#include "absl/strings/str_cat.h"
#include "quotum/core/catalog.h"
#include "quotum/engine/alerts.h"
#include "quotum/engine/send_messages.h"

namespace quotum::engine {
namespace {

void AppendLeaseChange(const LeaseChange& c, CommitBatch& b) {
  switch (c.kind) {
    case LeaseChange::Kind::kSession:
      b.sessions.push_back(c.session);
      break;
    case LeaseChange::Kind::kSessionDeleted:
      b.deleted_sessions.emplace_back(c.session.tenant_id, c.session.id);
      break;
    case LeaseChange::Kind::kGroup:
      b.groups.push_back(c.group);
      break;
    case LeaseChange::Kind::kGroupDeleted:
      b.deleted_groups.emplace_back(c.group.tenant_id, c.group.id);
      break;
    case LeaseChange::Kind::kGauge:
      b.gauges.push_back(c.gauge);
      break;
  }
  if (c.event) b.events.push_back(*c.event);
}

// A give-back's units (and credits) taken back out of the hour and day
// they were charged in.
void AppendGivenBack(const FactsEntry& e, CommitBatch& b) {
  const UsageFacts& f = e.facts;
  AppendGivenBackRows(e.tenant_id, f.meter, f.channel, f.period_start, f.at, e.charged,
                      e.credits_given_back, b.given_back);
}

}  // namespace

std::string LeaseChange::Subject() const {
  switch (kind) {
    case Kind::kSession:
    case Kind::kSessionDeleted:
      return absl::StrCat("s/", session.id);
    case Kind::kGroup:
    case Kind::kGroupDeleted:
      return absl::StrCat("g/", group.id);
    case Kind::kGauge:
      return absl::StrCat("v/", gauge.meter);
  }
  return "";
}

void AppendRows(const FactsEntry& e, CommitBatch& b) {
  const UsageFacts& f = e.facts;
  if (f.give_back) {
    AppendGivenBack(e, b);
    return;
  }
  if (e.charged > 0) {
    b.usage.push_back(UsageDelta{e.tenant_id, f.meter, f.channel,
                                 f.late_period_start.value_or(f.period_start), f.at, e.charged});
  }
  if (e.api_call) {
    b.usage.push_back(
        UsageDelta{e.tenant_id, std::string(meters::kApiCalls), "", f.period_start, f.now, 1});
  }
  if (f.credits && e.charged > 0) {
    b.usage.push_back(UsageDelta{e.tenant_id, std::string(meters::kCredits), f.channel,
                                 f.late_period_start.value_or(f.period_start), f.at,
                                 e.charged * f.credits->per_unit});
  }
  if (f.credits && e.credits_before) {
    AppendReached(AlertsOfCharge(ChargeOfMeter{
                      e.tenant_id, meters::kCredits, BillingPeriod{f.period_start, f.period_end},
                      *e.credits_before, e.charged * f.credits->per_unit,
                      e.credits_limit_judged ? e.credits_limit_judged : f.credits->limit,
                      f.credits->thresholds, f.now}),
                  b);
  }
  AppendSendMessages(f.messages, e.allowed ? e.charged : 0, f.queue_rest, b);
  if (e.counter_before) {
    AppendReached(
        AlertsOfCharge(ChargeOfMeter{
            e.tenant_id, f.meter, BillingPeriod{f.period_start, f.period_end}, *e.counter_before,
            e.charged, e.limit_judged ? e.limit_judged : f.limit, f.thresholds, f.now}),
        b);
  }
  for (const auto& [id, units] : e.topup_draws) b.topup_draws.push_back({e.tenant_id, id, units});
  if (e.lease) AppendLeaseChange(*e.lease, b);
}

}  // namespace quotum::engine
