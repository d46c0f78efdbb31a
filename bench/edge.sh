#!/usr/bin/env bash
# Where the consume path's distance to nginx lies (issue 15), in one run,
# loopback only, wrk -t2 -c64 for DURATION seconds, ROUNDS rounds alternated:
#   nginx      limit_req returning a constant (bench/peers.sh's peer)
#   floor      bench/edge/floor_server.cc: an epoll loop of our own returning
#              the same constant (what a server of our own could cost at best)
#   healthz    Quotum's HTTP edge with a trivial handler (GET /healthz)
#   consume    Quotum's POST /api/v2/quota/consume (journals, "process")
# and, with perf installed, Quotum's own CPU time per request (task-clock over
# PERF_SECONDS in the middle of a run) for healthz and consume.
#   DURATION=8 ROUNDS=2 bench/edge.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/bench_tenant.sh"
DURATION="${DURATION:-8}" ROUNDS="${ROUNDS:-2}" PERF_SECONDS="${PERF_SECONDS:-4}"
WORK="$(mktemp -d /tmp/quotum-edge.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for port in 18821 18822 18823; do require_free_port "$port"; done
(cd "$ROOT" && cmake --preset release -DBUILD_TESTING=OFF >/dev/null &&
  cmake --build --preset release --target quotum >/dev/null)
c++ -O2 -std=c++20 -o "$WORK/floor" "$ROOT/bench/edge/floor_server.cc" -lpthread

mkdir -p "$WORK/nginx"
sed -e "s#@PORT@#18821#" -e "s#@DIR@#$WORK/nginx#" "$ROOT/bench/peers/nginx.conf.in" > "$WORK/nginx/nginx.conf"
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>"$WORK/nginx/start.log" &
PIDS+=($!)
"$WORK/floor" 18822 2 &
PIDS+=($!)
"$ROOT/build/release/apps/quotum/quotum" serve --config "$ROOT/examples/quotum.toml" \
  --listen 127.0.0.1:18823 --data-dir "$WORK/quotum" --admin-key bench-admin > "$WORK/quotum.log" 2>&1 &
QUOTUM=$!
PIDS+=("$QUOTUM")
for port in 18821 18822 18823; do wait_port "$port"; done
create_bench_tenant 18823

# wrk_rate NAME URL [SCRIPT]: prints requests/s (and fails on non-2xx answers).
wrk_rate() {
  local out
  out=$(QUOTUM_BENCH_KEY="$KEY" wrk -t2 -c64 -d"${DURATION}s" ${3:+-s "$ROOT/bench/peers/$3"} "$2")
  if grep -q "Non-2xx" <<<"$out"; then echo "$1: non-2xx answers" >&2; exit 1; fi
  awk '/^Requests\/sec/ { printf "%d", $2 }' <<<"$out"
}

declare -A RATES
for _ in $(seq 1 "$ROUNDS"); do
  RATES[nginx]+=" $(wrk_rate nginx http://127.0.0.1:18821/ post.lua)"
  RATES[floor]+=" $(wrk_rate floor http://127.0.0.1:18822/ post.lua)"
  RATES[healthz]+=" $(wrk_rate healthz http://127.0.0.1:18823/healthz)"
  RATES[consume]+=" $(wrk_rate consume http://127.0.0.1:18823/api/v2/quota/consume post.lua)"
done
# rates: a name's rounds, one per line, for median.
rates() { tr ' ' '\n' <<<"${RATES[$1]}" | grep .; }
NGINX=$(rates nginx | median)
echo "| server | requests/s (rounds) | median | ratio to nginx |"
echo "|---|---|---:|---:|"
for name in nginx floor healthz consume; do
  m=$(rates "$name" | median)
  echo "| $name |${RATES[$name]} | $m | $(awk -v a="$m" -v b="$NGINX" 'BEGIN { printf "%.2f", a / b }') |"
done

command -v perf >/dev/null || { echo "(perf not installed: no CPU time per request)"; exit 0; }
echo
echo "| Quotum, $PERF_SECONDS s under load | requests/s | Quotum's CPU per request |"
echo "|---|---:|---:|"
for spec in "healthz http://127.0.0.1:18823/healthz" "consume http://127.0.0.1:18823/api/v2/quota/consume post.lua"; do
  read -r name url script <<<"$spec"
  (wrk_rate "$name" "$url" "$script" > "$WORK/$name.rate") &
  load=$!
  sleep $(((DURATION - PERF_SECONDS) / 2))
  before=$(curl -s http://127.0.0.1:18823/metrics | awk '/^quotum_http_requests_total/ { n += $2 } END { print n + 0 }')
  perf stat -x, -e task-clock -p "$QUOTUM" -o "$WORK/$name.stat" -- sleep "$PERF_SECONDS"
  after=$(curl -s http://127.0.0.1:18823/metrics | awk '/^quotum_http_requests_total/ { n += $2 } END { print n + 0 }')
  wait "$load"
  ms=$(awk -F, '/task-clock/ { print $1 }' "$WORK/$name.stat")
  echo "| $name | $(cat "$WORK/$name.rate") | $(awk -v ms="$ms" -v n=$((after - before)) 'BEGIN { printf "%.1f µs", (n > 0) ? ms * 1000 / n : 0 }') |"
done
