#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace quotum::report {

/// A meter's total in the current period against its limit.
struct StatementMeter {
  std::string name;
  uint64_t used = 0;
  std::optional<uint64_t> limit;  ///< nullopt: no limit on the plan
  double percentage = 0;          ///< of the limit, 0 without one
  std::string band;               ///< "green" | "yellow" | "red"
};

struct StatementDay {
  absl::CivilDay day;
  uint64_t value = 0;
};

struct StatementChannel {
  std::string meter;
  std::string channel;  ///< empty: the meter has no channel dimension
  uint64_t value = 0;
};

/// A usage threshold reached in the period.
struct StatementAlert {
  std::string meter;
  int threshold = 0;  ///< percent of the limit
  uint64_t value = 0;
  uint64_t limit = 0;
  absl::Time at;
  /// When it stopped holding because the limit grew.
  std::optional<absl::Time> resolved_at;
};

/// Everything a usage statement shows; the caller fills it, the renderer
/// only draws.
struct UsageStatement {
  std::string tenant_id;
  std::string tenant_name;
  std::string plan;  ///< display name
  std::string period_label;
  absl::Time period_start;
  absl::Time period_end;  ///< exclusive
  absl::CivilDay from;    ///< the range of the chart and the channel table, UTC days
  absl::CivilDay to;
  std::vector<StatementMeter> meters;
  std::string chart_meter;         ///< the meter the daily chart draws
  std::vector<StatementDay> days;  ///< oldest first, one per day of the range
  std::vector<StatementChannel> channels;
  /// The thresholds reached in the billing period, oldest first.
  std::vector<StatementAlert> alerts;
  absl::Time generated_at;
};

/// Draws the statement as an A4 PDF with cairo (as many pages as its tables
/// need) and returns the document's bytes. Thread-safe (no shared state).
absl::StatusOr<std::string> RenderStatementPdf(const UsageStatement& s);

/// Frees the process-wide font caches cairo and fontconfig keep after a first
/// statement (sanitizer builds report them as leaks at exit). Call once, at
/// exit, when no statement is being drawn.
void ReleaseStatementCaches();

}  // namespace quotum::report
