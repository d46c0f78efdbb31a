#include "quotum/engine/scheduled_jobs.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/usage_reports.h"

namespace quotum::engine {

ScheduledJobs::ScheduledJobs(Store* store, Engine* engine, const Clock* clock,
                             ScheduleOptions options)
    : store_(store),
      engine_(engine),
      clock_(clock),
      opts_(std::move(options)),
      last_sync_(LastDailyRun(clock->Now(), opts_.reconcile_at)) {}

absl::Status ScheduledJobs::RunDue() {
  const absl::Time now = clock_->Now();
  if (now >= next_forecast_check_) {
    next_forecast_check_ = now + opts_.forecast_every;
    if (absl::Status s = engine_->AdoptEveryTenant(); !s.ok()) return s;
    if (absl::Status s = engine_->CheckForecasts(stop_); !s.ok()) return s;
  }
  if (Stopping()) return absl::OkStatus();  // the rest is due again next start
  if (now >= next_period_close_) {
    // Hourly: it reads the counters table whole. Ended periods wait for it
    // a grace plus up to an hour; their counters stay exact meanwhile.
    next_period_close_ = now + absl::Hours(1);
    absl::StatusOr<size_t> closed = engine_->ClosePeriods();
    if (!closed.ok()) {
      // Logged, not returned: the sync and the reports still run; the close
      // is tried again in five minutes.
      next_period_close_ = now + absl::Minutes(5);
      std::cerr << "quotum: period close failed: " << closed.status() << std::endl;
    } else if (*closed > 0) {
      std::cerr << "quotum: closed " << *closed << " billing periods" << std::endl;
    }
  }
  if (Stopping()) return absl::OkStatus();
  if (absl::Status s = SyncIfDue(now); !s.ok()) return s;
  if (Stopping()) return absl::OkStatus();
  return ReportIfDue(now);
}

absl::Status ScheduledJobs::SyncIfDue(absl::Time now) {
  const absl::Time due = LastDailyRun(now, opts_.reconcile_at);
  if (due <= last_sync_) return absl::OkStatus();
  // One instance per night: the first to take the night's lease (held for
  // longer than a day) runs it.
  const std::string night = absl::FormatTime("%Y-%m-%d", due, absl::UTCTimeZone());
  absl::StatusOr<bool> mine =
      store_->HoldLease(absl::StrCat("reconcile-", night), opts_.instance_name, absl::Hours(25));
  if (!mine.ok()) return mine.status();
  last_sync_ = due;
  if (!*mine) return absl::OkStatus();
  absl::StatusOr<ReconcileReport> report = engine_->SyncAggregates();
  if (!report.ok()) {
    last_sync_ = due - absl::Seconds(1);  // tried again next round
    return report.status();
  }
  std::cerr << "quotum: nightly sync " << night << ": " << report->rows.size() << " counters of "
            << report->tenants << " tenants, " << report->flagged << " drifted over "
            << engine_->reconcile_flag_percent() << "%, " << report->repaired << " repaired"
            << std::endl;
  return absl::OkStatus();
}

absl::Status ScheduledJobs::ReportIfDue(absl::Time now) {
  // Each finished week and month once per start; the event ids keep each
  // tenant's report once across restarts and instances.
  const DayRange week = LastCompletedWeek(now);
  if (week != reported_week_) {
    if (absl::Status s = engine_->MakeReports(kWeeklyReport, week); !s.ok()) return s;
    reported_week_ = week;
  }
  const DayRange month = LastCompletedMonth(now);
  if (month != reported_month_) {
    if (absl::Status s = engine_->MakeReports(kMonthlyReport, month); !s.ok()) return s;
    reported_month_ = month;
  }
  return absl::OkStatus();
}

}  // namespace quotum::engine
