// Engine: usage reads (current period, daily series, period history).
#include "absl/strings/str_cat.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {

UsageView Engine::CurrentUsage(const Principal& who) {
  absl::StatusOr<UsageView> v = ReadCurrentUsage(who);
  return v.ok() ? std::move(*v) : UsageView{};
}

absl::StatusOr<UsageView> Engine::ReadCurrentUsage(const Principal& who) {
  return UsageOf(*who.tenant);
}

absl::StatusOr<UsageView> Engine::ReadCounters(const Principal& who) {
  return CountersOf(*who.tenant);
}

absl::StatusOr<UsageView> Engine::UsageOf(TenantState& t) {
  absl::StatusOr<UsageView> v = CountersOf(t);
  if (v.ok()) AddForecasts(*v);
  return v;
}

absl::StatusOr<UsageView> Engine::CountersOf(TenantState& t) {
  const Catalog& cat = *opts_.catalog;
  UsageView v;
  {
    MutexLock lock(&t.mu);
    Touch(t, clock_->Now());
    v.tenant = ViewOf(t);
    v.plan = t.plan;
    v.pending_plan = t.pending_plan;
    v.addons = t.addons;
    v.topups = t.topups;
    v.used = t.used;
    v.limits.resize(cat.meter_count());
    for (MeterId m = 0; m < cat.meter_count(); ++m) v.limits[m] = EffectiveLimit(t, m);
  }
  if (opts_.shared_ledger) {
    if (absl::Status s = ReadSharedCounters(t, v); !s.ok()) return s;
    if (!v.from_aggregate) {
      if (absl::Status s = ReadSharedTopups(t.id, v.topups); !s.ok()) return s;
    }
  }
  const absl::Time now = clock_->Now();
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    const TopupBalance b = TopupBalanceOf(v.topups, cat.meters[m].name, now);
    v.limits[m] = LimitWithTopups(v.limits[m], b.any, v.used[m], b.left);
  }
  return v;
}

void Engine::AddForecasts(UsageView& v) {
  FoldAcknowledged();
  ProjectInto(v);
}

void Engine::ProjectInto(UsageView& v) {
  const Catalog& cat = *opts_.catalog;
  const absl::Time now = clock_->Now();
  const absl::CivilDay first = absl::ToCivilDay(v.tenant.period.start, absl::UTCTimeZone());
  const absl::CivilDay today = absl::ToCivilDay(now, absl::UTCTimeZone());
  absl::StatusOr<std::vector<DailyRow>> rows = store_->Daily(v.tenant.id, first, today);
  if (!rows.ok()) return;  // usage is still answered, without a forecast
  std::vector<std::vector<uint64_t>> series(cat.meter_count(),
                                            std::vector<uint64_t>(today - first + 1, 0));
  for (const DailyRow& r : *rows) {
    std::optional<MeterId> m = cat.FindMeter(r.meter);
    if (m && r.day >= first && r.day <= today) series[*m][r.day - first] += r.value;
  }
  v.forecasts.assign(cat.meter_count(), std::nullopt);
  std::vector<std::pair<MeterId, uint64_t>> projected;
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    if (cat.meters[m].kind != MeterKind::kCounter) continue;
    v.forecasts[m] = ProjectUsage(ForecastInput{v.tenant.period.start, v.tenant.period.end, now,
                                                v.used[m], v.limits[m], std::move(series[m])});
    if (v.limits[m]) projected.emplace_back(m, v.forecasts[m]->projected_period_end);
  }
  v.recommended_plan = RecommendPlan(cat, *v.plan, projected);
}

namespace {

// The catalog's counter meters: their names and ids, in id order.
void CounterMeters(const Catalog& cat, std::vector<std::string>& names, std::vector<MeterId>& ids) {
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    if (cat.meters[m].kind != MeterKind::kCounter) continue;
    names.push_back(cat.meters[m].name);
    ids.push_back(m);
  }
}

}  // namespace

absl::Status Engine::ReadSharedCounters(TenantState& t, UsageView& v) {
  const Catalog& cat = *opts_.catalog;
  std::vector<std::string> names;
  std::vector<MeterId> ids;
  CounterMeters(cat, names, ids);
  auto live = opts_.shared_ledger->Counters(v.tenant.id, v.tenant.period.start, names);
  if (live.status().code() == absl::StatusCode::kFailedPrecondition) {
    if (absl::Status s = GiveBaseline(t); s.ok()) {
      live = opts_.shared_ledger->Counters(v.tenant.id, v.tenant.period.start, names);
    }
  }
  if (live.ok()) {
    for (size_t i = 0; i < ids.size(); ++i) v.used[ids[i]] = (*live)[i];
    absl::StatusOr<LeaseGauges> gauges = opts_.shared_ledger->Gauges(t.id, clock_->Now());
    if (!gauges.ok()) return gauges.status();
    v.used[sessions_meter_] = gauges->sessions_active;
    v.used[groups_meter_] = gauges->groups_active;
    v.used[subscribers_meter_] = gauges->subscribers;
    return absl::OkStatus();
  }
  // The seed's fallback: the aggregate table, marked as such.
  auto rows = store_->Periods(v.tenant.id, v.tenant.period.start);
  if (!rows.ok()) return live.status();
  v.from_aggregate = true;
  for (MeterId m : ids) v.used[m] = 0;
  for (const CounterRow& r : *rows) {
    auto m = cat.FindMeter(r.meter);
    if (m && r.period_start == v.tenant.period.start) v.used[*m] = r.value;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DayUsage>> Engine::Daily(const Principal& who, absl::CivilDay from,
                                                    absl::CivilDay to) {
  if (to < from) {
    return BadRequest("invalid_range", "\"from\" must not be after \"to\".");
  }
  if (to - from >= kMaxReportDays) {
    return BadRequest("invalid_range",
                      absl::StrCat("A daily range covers at most ", kMaxReportDays, " days."));
  }
  const Catalog& cat = *opts_.catalog;
  FoldAcknowledged();
  auto rows = store_->Daily(who.tenant->id, from, to);
  if (!rows.ok()) {
    return StoreUnavailable("Usage history");
  }
  std::vector<DayUsage> out;
  out.reserve(static_cast<size_t>(to - from + 1));
  for (absl::CivilDay d = to; d >= from; --d) {
    out.push_back(DayUsage{d, std::vector<uint64_t>(cat.meter_count(), 0)});
  }
  for (const DailyRow& r : *rows) {
    auto m = cat.FindMeter(r.meter);
    if (!m || r.day < from || r.day > to) continue;
    out[static_cast<size_t>(to - r.day)].values[*m] += r.value;
  }
  return out;
}

void Engine::OverlaySharedCounters(const std::string& tenant_id, const BillingPeriod& period,
                                   std::vector<uint64_t>& values) {
  const Catalog& cat = *opts_.catalog;
  std::vector<std::string> names;
  std::vector<MeterId> ids;
  CounterMeters(cat, names, ids);
  absl::StatusOr<std::vector<uint64_t>> counters =
      opts_.shared_ledger->Counters(tenant_id, period.start, names);
  if (!counters.ok()) return;
  for (size_t i = 0; i < ids.size(); ++i) values[ids[i]] = (*counters)[i];
}

absl::StatusOr<std::vector<PeriodUsage>> Engine::History(const Principal& who, int months) {
  if (months < 1 || months > 24) {
    return BadRequest("invalid_months", "months must be between 1 and 24.");
  }
  FoldAcknowledged();
  const Catalog& cat = *opts_.catalog;
  TenantState& t = *who.tenant;
  absl::Time anchor;
  BillingInterval interval;
  BillingPeriod current;
  std::vector<uint64_t> live;
  {
    MutexLock lock(&t.mu);
    Touch(t, clock_->Now());
    anchor = t.subscription_start;
    interval = t.plan->interval;
    current = t.period;
    live = t.used;
  }
  const BillingPeriod first = PeriodAt(anchor, interval, anchor);
  std::vector<PeriodUsage> out;
  for (int64_t k = current.index; k > current.index - months && k >= first.index; --k) {
    BillingPeriod p{PeriodStart(anchor, interval, k), PeriodStart(anchor, interval, k + 1), k};
    out.push_back(PeriodUsage{p, k == current.index, std::vector<uint64_t>(cat.meter_count(), 0)});
  }
  if (out.empty()) return out;
  auto rows = store_->Periods(t.id, out.back().period.start);
  if (!rows.ok()) {
    return StoreUnavailable("Usage history");
  }
  for (const CounterRow& r : *rows) {
    auto m = cat.FindMeter(r.meter);
    if (!m || cat.meters[*m].kind != MeterKind::kCounter) continue;
    for (auto& p : out) {
      if (p.period.start == r.period_start && (!p.current || opts_.shared_ledger)) {
        p.values[*m] = r.value;
      }
    }
  }
  if (opts_.shared_ledger) {
    // Scale-out: the current period from Redis when it answers (the
    // aggregates trail it by a drain round), else the aggregates.
    OverlaySharedCounters(t.id, current, out.front().values);
    return out;
  }
  // The current period is answered from memory: it includes what is still committing.
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    if (cat.meters[m].kind == MeterKind::kCounter) out.front().values[m] = live[m];
  }
  return out;
}

}  // namespace quotum::engine

namespace quotum::engine {

absl::StatusOr<MeterId> Engine::CounterMeter(absl::string_view meter) const {
  const std::optional<MeterId> m = opts_.catalog->FindMeter(meter);
  if (!m) return Unprocessable("unknown_meter", absl::StrCat("Unknown meter \"", meter, "\"."));
  if (opts_.catalog->meters[*m].kind != MeterKind::kCounter) {
    return Unprocessable("gauge_meter",
                         absl::StrCat("\"", meter,
                                      "\" is a concurrent (gauge) meter: it has a current value, "
                                      "not usage by channel."));
  }
  return *m;
}

absl::StatusOr<MessageRecord> Engine::FindMessage(const Principal& who, absl::string_view id) {
  auto m = store_->FindMessage(who.tenant->id, std::string(id));
  if (!m.ok()) {
    return StoreUnavailable("Messages");
  }
  if (!*m) {
    return Error(absl::StatusCode::kNotFound, "message_not_found",
                 absl::StrCat("No message \"", id, "\"."));
  }
  return **m;
}

}  // namespace quotum::engine
