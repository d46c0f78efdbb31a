#!/usr/bin/env bash
# Builds the release micro benchmarks and runs them (Google Benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
dpkg-query -W -f='${Status}' libbenchmark-dev 2>/dev/null | grep -q "install ok installed" ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libbenchmark-dev; }
cmake --preset release -DQUOTUM_BENCH=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build --preset release --target quotum_micro_bench
# Two processes: the 1 M-tenant fixture's heap would disturb the other timings.
build/release/bench/quotum_micro_bench --benchmark_min_time=0.5 --benchmark_filter=-Million "$@"
build/release/bench/quotum_micro_bench --benchmark_min_time=0.5 --benchmark_filter=Million "$@"
