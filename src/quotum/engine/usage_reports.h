// The scheduled usage reports (usage.report.weekly, usage.report.monthly): a
// tenant's totals per meter and channel over a finished week or month, its
// peak day per meter, the alerts of the range and the current period's
// forecast, as one outbox event. Pure: the engine reads, this assembles.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quotum/core/schedule.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

inline constexpr std::string_view kWeeklyReport = "usage.report.weekly";
inline constexpr std::string_view kMonthlyReport = "usage.report.monthly";

/// What one tenant's report is made of.
struct ReportInput {
  std::string_view type;  ///< kWeeklyReport or kMonthlyReport
  DayRange range;
  absl::Time now;  ///< the event's time
  /// The tenant's usage now, with forecasts (the forecast is of this period).
  const UsageView* usage = nullptr;
  MeterId forecast_meter = 0;         ///< the meter whose forecast the report carries
  std::vector<DailyChannelRow> days;  ///< the range's rows
  std::vector<AlertRecord> alerts;    ///< reached in the range
};

/// The report's deterministic id: one per tenant, type and range.
std::string ReportEventId(std::string_view tenant_id, std::string_view type, const DayRange& range);

/// The report event. Fields: from, to (dates), plan, totals (JSON: per meter
/// {"total", "channels": {channel: units}, "peak_day", "peak_value"}), alerts
/// (JSON array), forecast (JSON object, or null when there is none).
EventRecord ReportEvent(const Catalog& catalog, const ReportInput& in);

}  // namespace quotum::engine
