// The jobs that run on a clock rather than on a request: the forecast
// check, the period close, the nightly reconciliation and the weekly and
// monthly usage reports.
// Driven by the outbox relay on the one instance holding its lease.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "quotum/core/clock.h"
#include "quotum/core/schedule.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

class Engine;

struct ScheduleOptions {
  /// How often the forecasts are checked (usage.forecast_exceeds_limit).
  absl::Duration forecast_every = absl::Minutes(10);
  /// The nightly sync's time of day, after midnight UTC.
  absl::Duration reconcile_at = absl::ZeroDuration();
  std::string instance_name;  ///< the holder of the per-day sync lease
};

class ScheduledJobs {
 public:
  /// The first sync is the first daily run after `clock`'s now: a start
  /// does not sync (a restart at 00:30 does not sync twice that night).
  ScheduledJobs(Store* store, Engine* engine, const Clock* clock, ScheduleOptions options);

  /// Runs every job that is due. Called from one thread (the relay's).
  absl::Status RunDue();
  /// True once the relay is stopping: RunDue asks it between its jobs, and
  /// the forecast check between tenants, and ends early. (Period close, the
  /// nightly sync and the reports, once begun, still run to their end.)
  void SetStopCheck(std::function<bool()> stop) { stop_ = std::move(stop); }

 private:
  bool Stopping() const { return stop_ && stop_(); }
  absl::Status SyncIfDue(absl::Time now);
  absl::Status ReportIfDue(absl::Time now);

  Store* store_;
  Engine* engine_;
  const Clock* clock_;
  const ScheduleOptions opts_;
  std::function<bool()> stop_;
  absl::Time next_forecast_check_ = absl::InfinitePast();
  absl::Time next_period_close_ = absl::InfinitePast();
  absl::Time last_sync_;
  /// The report ranges already made (nullopt: none yet since start).
  std::optional<DayRange> reported_week_, reported_month_;
};

}  // namespace quotum::engine
