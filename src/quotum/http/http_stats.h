#pragma once

#include "quotum/obs/metrics.h"

namespace quotum::http {

/// The HTTP layer's metrics, declared in one place.
struct HttpStats {
  obs::CounterFamily requests{"quotum_http_requests_total",
                              "HTTP requests answered, by route pattern and status code.",
                              {"route", "status"}};
  obs::HistogramFamily duration{
      "quotum_http_request_duration_seconds",
      "Time from a parsed request to its response being handed to the connection, by route "
      "pattern and status code.",
      {"route", "status"},
      obs::LatencyBuckets()};
};

}  // namespace quotum::http
