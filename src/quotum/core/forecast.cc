#include "quotum/core/forecast.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "quotum/core/quota.h"

namespace quotum {
namespace {

constexpr absl::Duration kDay = absl::Hours(24);
constexpr absl::Duration kMinElapsed = absl::Hours(1);

double Days(absl::Duration d) { return absl::FDivDuration(d, kDay); }

absl::Time StartOf(absl::CivilDay d) { return absl::FromCivil(d, absl::UTCTimeZone()); }

int WeekdayOf(absl::CivilDay d) { return static_cast<int>(absl::GetWeekday(d)); }

using WeekdayFactors = std::array<double, 7>;  // indexed by absl::Weekday (Monday = 0)

// Units per day: level x factor[weekday of the day].
struct Pace {
  double level = 0;
  WeekdayFactors factor{1, 1, 1, 1, 1, 1, 1};
  std::string method;
};

// The input's days resolved against the calendar. Complete days are the
// indices [first_complete, today).
struct PeriodDays {
  absl::CivilDay day0;  // the UTC day of period_start (index 0)
  absl::Time now;       // clamped into the period
  int64_t first_complete = 0;
  int64_t today = 0;
  int64_t complete() const { return std::max<int64_t>(today - first_complete, 0); }
};

PeriodDays Resolve(const ForecastInput& in) {
  PeriodDays d;
  d.day0 = absl::ToCivilDay(in.period_start, absl::UTCTimeZone());
  d.now = std::clamp(in.now, in.period_start, std::max(in.period_start, in.period_end));
  d.first_complete = StartOf(d.day0) == in.period_start ? 0 : 1;
  d.today = absl::ToCivilDay(d.now, absl::UTCTimeZone()) - d.day0;
  return d;
}

uint64_t At(const std::vector<uint64_t>& daily, int64_t i) {
  return i >= 0 && static_cast<size_t>(i) < daily.size() ? daily[i] : 0;
}

// Today's units: the series' entry for today, or what the counter holds
// beyond the earlier days when the series has none yet.
double TodayUnits(const ForecastInput& in, const PeriodDays& d) {
  if (static_cast<size_t>(d.today) < in.daily.size()) return static_cast<double>(in.daily[d.today]);
  uint64_t before = 0;
  for (int64_t i = 0; i < d.today; ++i) before += At(in.daily, i);
  return in.used > before ? static_cast<double>(in.used - before) : 0.0;
}

WeekdayFactors Seasonality(const ForecastInput& in, const PeriodDays& d, const ForecastOptions& o) {
  WeekdayFactors factor{1, 1, 1, 1, 1, 1, 1};
  std::array<double, 7> sum{};
  std::array<int64_t, 7> count{};
  double total = 0;
  for (int64_t i = d.first_complete; i < d.today; ++i) {
    const int w = WeekdayOf(d.day0 + i);
    sum[w] += static_cast<double>(At(in.daily, i));
    ++count[w];
    total += static_cast<double>(At(in.daily, i));
  }
  const double mean = total / static_cast<double>(d.complete());
  if (mean <= 0) return factor;
  for (int w = 0; w < 7; ++w) {
    if (count[w] == 0) continue;
    factor[w] = std::clamp(sum[w] / count[w] / mean, o.min_weekday_factor, o.max_weekday_factor);
  }
  return factor;
}

// The exponentially weighted level of the complete days, deseasonalised by
// the ratio estimator sum(w x) / sum(w factor).
double EwmaLevel(const ForecastInput& in, const PeriodDays& d, const WeekdayFactors& factor,
                 double half_life_days) {
  double weighted_units = 0, weighted_factors = 0;
  for (int64_t i = d.first_complete; i < d.today; ++i) {
    const double w = std::exp2(-static_cast<double>(d.today - 1 - i) / half_life_days);
    weighted_units += w * static_cast<double>(At(in.daily, i));
    weighted_factors += w * factor[WeekdayOf(d.day0 + i)];
  }
  return weighted_factors > 0 ? weighted_units / weighted_factors : 0;
}

Pace ChoosePace(const ForecastInput& in, const PeriodDays& d, const ForecastOptions& o) {
  const bool nothing = in.used == 0 && std::all_of(in.daily.begin(), in.daily.end(),
                                                   [](uint64_t u) { return u == 0; });
  if (nothing) return {0, {1, 1, 1, 1, 1, 1, 1}, "no_data"};
  Pace pace;
  const std::string ewma = absl::StrCat("ewma", o.half_life_days);
  if (d.complete() == 0 || in.daily.empty()) {
    const double elapsed = Days(std::max(d.now - in.period_start, kMinElapsed));
    pace.level = static_cast<double>(in.used) / elapsed;
    pace.method = "today_pace";
  } else if (d.complete() == 1) {
    const double today = Days(std::max(d.now - StartOf(d.day0 + d.today), kMinElapsed));
    pace.level =
        (static_cast<double>(At(in.daily, d.first_complete)) + TodayUnits(in, d)) / (1.0 + today);
    pace.method = ewma + "+today";
  } else {
    const bool seasonal = d.complete() >= o.min_days_for_weekday;
    if (seasonal) pace.factor = Seasonality(in, d, o);
    pace.level = EwmaLevel(in, d, pace.factor, o.half_life_days);
    pace.method = seasonal ? ewma + "+weekday" : ewma;
  }
  return pace;
}

struct Walk {
  double units = 0;                   // projected over [from, to)
  std::optional<absl::Time> reached;  // when the running total first reaches target
};

// Walks [from, to) one UTC day at a time, each piece at its weekday's pace.
Walk WalkRest(const Pace& pace, absl::Time from, absl::Time to, std::optional<double> target) {
  Walk walk;
  absl::CivilDay day = absl::ToCivilDay(from, absl::UTCTimeZone());
  for (absl::Time start = from; start < to; start = StartOf(++day)) {
    const absl::Time end = std::min(StartOf(day + 1), to);
    const double per_day = pace.level * pace.factor[WeekdayOf(day)];
    const double units = per_day * Days(end - start);
    if (target && !walk.reached && per_day > 0 && walk.units + units >= *target) {
      walk.reached = start + absl::Seconds((*target - walk.units) / per_day * 86400.0);
    }
    walk.units += units;
  }
  return walk;
}

uint64_t AddRounded(uint64_t used, double units) {
  const double room = static_cast<double>(kMaxCounter - std::min(used, kMaxCounter));
  if (!(units < room)) return std::max(used, kMaxCounter);
  return used + static_cast<uint64_t>(std::llround(units));
}

bool SameInterval(const BillingInterval& a, const BillingInterval& b) {
  return a.unit == b.unit && (a.unit == BillingInterval::Unit::kMonth || a.days == b.days);
}

// ceil(units x (100 + headroom_percent) / 100), saturating.
uint64_t Needed(uint64_t units, uint32_t headroom_percent) {
  const unsigned __int128 n = static_cast<unsigned __int128>(units) * (100u + headroom_percent);
  const unsigned __int128 needed = (n + 99) / 100;
  return needed > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(needed);
}

bool Fits(const Plan& plan, const std::vector<std::pair<MeterId, uint64_t>>& needed) {
  for (const auto& [meter, units] : needed) {
    if (meter >= plan.limits.size() || !plan.limits[meter]) continue;  // unlimited
    if (*plan.limits[meter] < units) return false;
  }
  return true;
}

}  // namespace

Forecast ProjectUsage(const ForecastInput& in, const ForecastOptions& options) {
  const PeriodDays days = Resolve(in);
  const Pace pace = ChoosePace(in, days, options);
  // The units still under the limit; none to watch when unlimited or already over.
  std::optional<double> target;
  if (in.limit && in.used < *in.limit) target = static_cast<double>(*in.limit - in.used);
  const Walk walk = WalkRest(pace, days.now, std::max(days.now, in.period_end), target);

  Forecast f;
  f.method = pace.method;
  f.limit = in.limit;
  f.projected_period_end = AddRounded(in.used, walk.units);
  if (in.limit) f.projected_percentage = UsagePercentage(f.projected_period_end, in.limit);
  if (ForecastExceedsLimit(f) && walk.reached && *walk.reached < in.period_end) {
    f.limit_reached_at = walk.reached;
  }
  return f;
}

bool ForecastExceedsLimit(const Forecast& f) {
  return f.limit.has_value() && f.projected_period_end > *f.limit;
}

std::optional<std::string> RecommendPlan(const Catalog& catalog, const Plan& current,
                                         const std::vector<std::pair<MeterId, uint64_t>>& projected,
                                         uint32_t headroom_percent) {
  std::vector<std::pair<MeterId, uint64_t>> needed;
  needed.reserve(projected.size());
  for (const auto& [meter, units] : projected) {
    needed.emplace_back(meter, Needed(units, headroom_percent));
  }
  if (Fits(current, needed)) return current.name;
  const Plan* best = nullptr;
  for (const Plan& plan : catalog.plans) {
    if (plan.price_cents < 0 || !SameInterval(plan.interval, current.interval)) continue;
    if (!Fits(plan, needed)) continue;
    if (best == nullptr || plan.price_cents < best->price_cents) best = &plan;
  }
  if (best == nullptr) return std::nullopt;
  return best->name;
}

}  // namespace quotum
