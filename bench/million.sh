#!/usr/bin/env bash
# Start-up time and memory with N tenants (default 1,000,000): generates the data
# directory once, then starts `quotum serve` on it three times and reports the
# time to "listening on" and the resident set size after start-up.
#   TENANTS=1000000 bench/million.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TENANTS="${TENANTS:-1000000}"
WORK="$(mktemp -d /tmp/quotum-million.XXXXXX)"
"$ROOT/scripts/install-deps.sh"
dpkg-query -W -f='${Status}' libbenchmark-dev 2>/dev/null | grep -q "install ok installed" ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libbenchmark-dev; }
(cd "$ROOT" && cmake --preset release -DQUOTUM_BENCH=ON -DBUILD_TESTING=OFF >/dev/null &&
  cmake --build --preset release --target quotum quotum_million_tenants >/dev/null)
mkdir -p "$WORK/data"
gen_start=$(date +%s.%N)
"$ROOT/build/release/bench/quotum_million_tenants" "$WORK/data" "$TENANTS"
gen_end=$(date +%s.%N)
echo "generated in $(awk -v a="$gen_start" -v b="$gen_end" 'BEGIN { printf "%.1f", b - a }') s; db $(du -h "$WORK/data/quotum.db" | cut -f1)"
for round in 1 2 3; do
  t0=$(date +%s.%N)
  "$ROOT/build/release/apps/quotum/quotum" serve --config "$ROOT/examples/quotum.toml" \
    --listen 127.0.0.1:0 --data-dir "$WORK/data" --admin-key bench > "$WORK/out.log" 2>&1 &
  pid=$!
  until grep -q "listening on" "$WORK/out.log" 2>/dev/null; do sleep 0.05; done
  t1=$(date +%s.%N)
  rss_kb=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
  echo "round $round: start-up $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s, RSS $(awk -v k="$rss_kb" 'BEGIN { printf "%.0f MiB (%.0f bytes/tenant)", k / 1024, k * 1024 / '"$TENANTS"' }')"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
rm -rf "$WORK"
