#pragma once

#include "quotum/obs/metrics.h"

namespace quotum::engine {

/// The engine's metrics, declared in one place.
struct EngineStats {
  obs::CounterFamily decisions{
      "quotum_decisions_total",
      "Decisions by meter (none for requests that charge no meter), outcome (allowed, denied, "
      "shadow_denied) and the rule that refused or would have refused (none when allowed).",
      {"meter", "outcome", "rule"}};
  obs::HistogramFamily commit_seconds{"quotum_store_commit_duration_seconds",
                                      "Latency of one group commit (one store transaction).",
                                      {},
                                      obs::LatencyBuckets()};
  obs::HistogramFamily commit_batch{"quotum_store_commit_batch_requests",
                                    "Requests completed by one group commit.",
                                    {},
                                    obs::SizeBuckets()};
  obs::CounterFamily commit_failures{
      "quotum_store_commit_failures_total",
      "Group commits that failed; their requests were answered 503 and undone.",
      {}};
  obs::CounterFamily usage_rows_lost{
      "quotum_usage_rows_unwritten_total",
      "Scale-out mode: usage rows (for daily and hourly reports) whose write to the cold store "
      "failed after Redis had charged them; the period counters in Redis are unaffected.",
      {}};
  obs::CounterFamily lease_expiries{
      "quotum_session_lease_expiries_total",
      "Working sessions that stopped counting for lack of heartbeats.",
      {}};
};

}  // namespace quotum::engine
