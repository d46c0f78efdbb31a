// Engine: report reads (hourly day, channels over a range, daily rows per channel).
#include "absl/strings/str_cat.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {

namespace {
constexpr absl::Duration kHour = absl::Hours(1);
}  // namespace

BillingPeriod Engine::CurrentPeriod(const Principal& who) {
  MutexLock lock(&who.tenant->mu);
  Touch(*who.tenant, clock_->Now());
  return who.tenant->period;
}

absl::StatusOr<std::vector<HourUsage>> Engine::Hourly(const Principal& who, absl::CivilDay day) {
  FoldAcknowledged();
  const Catalog& cat = *opts_.catalog;
  const absl::Time start = absl::FromCivil(day, absl::UTCTimeZone());
  auto rows = store_->Hourly(who.tenant->id, start, start + 24 * kHour);
  if (!rows.ok()) return StoreUnavailable("Usage history");
  std::vector<HourUsage> out;
  out.reserve(24);
  for (int h = 0; h < 24; ++h) {
    out.push_back(HourUsage{start + h * kHour, std::vector<uint64_t>(cat.meter_count(), 0)});
  }
  for (const HourlyRow& r : *rows) {
    auto m = cat.FindMeter(r.meter);
    const int64_t h = (r.hour - start) / kHour;
    if (!m || h < 0 || h >= 24) continue;
    out[static_cast<size_t>(h)].values[*m] += r.value;
  }
  return out;
}

absl::StatusOr<std::vector<ChannelUsage>> Engine::ChannelsBetween(const Principal& who,
                                                                  absl::Time from, absl::Time to) {
  FoldAcknowledged();
  const Catalog& cat = *opts_.catalog;
  std::vector<ChannelUsage> out;
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    if (cat.meters[m].kind != MeterKind::kCounter) continue;
    auto rows = store_->Channels(who.tenant->id, cat.meters[m].name, from, to);
    if (!rows.ok()) return StoreUnavailable("Usage history");
    for (auto& [channel, value] : *rows) {
      if (value > 0) out.push_back(ChannelUsage{m, std::move(channel), value});
    }
  }
  return out;
}

absl::StatusOr<std::vector<DailyChannelRow>> Engine::DailyByChannel(const Principal& who,
                                                                    absl::CivilDay from,
                                                                    absl::CivilDay to) {
  if (to < from) return BadRequest("invalid_range", "\"from\" must not be after \"to\".");
  if (to - from >= kMaxReportDays) {
    return BadRequest("invalid_range",
                      absl::StrCat("A range covers at most ", kMaxReportDays, " days."));
  }
  FoldAcknowledged();
  auto rows = store_->DailyByChannel(who.tenant->id, from, to);
  if (!rows.ok()) return StoreUnavailable("Usage history");
  return rows;
}

}  // namespace quotum::engine
