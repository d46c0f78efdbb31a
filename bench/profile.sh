#!/usr/bin/env bash
# Where a consume's time goes, system-wide with wrk in the picture (issue 15).
# Starts the release build on a temp data dir, loads it with the peer
# benchmark's wrk settings (2 threads, 64 connections), and while wrk runs:
#   perf record -a (cpu-clock, 999 Hz)   -> top symbols and the split by binary
#   perf stat -a                          -> CPU time and context switches per request
#   syscall counts of quotum's threads    -> syscalls per request, by name
# Loopback only; stops by itself.   DURATION=10 bench/profile.sh [extra serve args]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/bench_tenant.sh"
DURATION="${DURATION:-10}"
TOP="${TOP:-40}"
PORT=18811
WORK="$(mktemp -d /tmp/quotum-profile.XXXXXX)"
PID=""
cleanup() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

(cd "$ROOT" && cmake --preset release -DBUILD_TESTING=OFF >/dev/null &&
  cmake --build --preset release --target quotum >/dev/null)

require_free_port "$PORT"
mkdir -p "$WORK/q"
cp "$ROOT/examples/quotum.toml" "$WORK/q/quotum.toml"
"$ROOT/build/release/apps/quotum/quotum" serve --config "$WORK/q/quotum.toml" \
  --listen "127.0.0.1:$PORT" --data-dir "$WORK/q/data" --admin-key bench-admin "$@" \
  > "$WORK/q/out.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
create_bench_tenant "$PORT"
URL="http://127.0.0.1:$PORT/api/v2/quota/consume"
wrk_run() { QUOTUM_BENCH_KEY="$KEY" wrk -t2 -c64 -d"$1s" -s "$ROOT/bench/peers/post.lua" "$URL"; }

wrk_run 3 > /dev/null # warm up
# The measured windows sit inside wrk's run: wrk starts first and outlasts them.
SAMPLE=$((DURATION - 2))
wrk_run "$DURATION" > "$WORK/wrk-perf.txt" &
sleep 1
perf record -a -F 999 -o "$WORK/perf.data" -- sleep "$SAMPLE" 2> /dev/null
wait $!
wrk_run "$DURATION" > "$WORK/wrk-stat.txt" &
sleep 1
perf stat -a -e task-clock,context-switches -x, -o "$WORK/stat.txt" -- sleep "$SAMPLE"
wait $!
wrk_run "$DURATION" > "$WORK/wrk-sys.txt" &
sleep 1
perf stat -e 'syscalls:sys_enter_*' -p "$PID" -x, -o "$WORK/sys.txt" -- sleep "$SAMPLE" 2> /dev/null
wait $!

rps() { awk '/^Requests\/sec/ { print $2 }' "$1"; }
echo "## Throughput: $(rps "$WORK/wrk-perf.txt") req/s under perf record," \
  "$(rps "$WORK/wrk-stat.txt") under perf stat, $(rps "$WORK/wrk-sys.txt") under syscall counting"
echo
STAT_REQS=$(awk -v r="$(rps "$WORK/wrk-stat.txt")" -v s="$SAMPLE" 'BEGIN { print r * s }')
SYS_REQS=$(awk -v r="$(rps "$WORK/wrk-sys.txt")" -v s="$SAMPLE" 'BEGIN { print r * s }')
echo "## Per request (machine-wide, wrk included)"
awk -F, -v n="$STAT_REQS" '$3 == "task-clock" { printf "- CPU: %.1f us\n", $1 * 1000 / n }
  $3 == "context-switches" { printf "- context switches: %.3f\n", $1 / n }' "$WORK/stat.txt"
echo
echo "## Quotum's syscalls per request"
awk -F, -v n="$SYS_REQS" '$3 ~ /^syscalls:sys_enter_/ { total += $1 }
  $3 ~ /^syscalls:sys_enter_/ && $1 + 0 > n / 100 {
  name = $3; sub(/^syscalls:sys_enter_/, "", name)
  printf "- %s: %.3f\n", name, $1 / n } END { printf "- all: %.3f\n", total / n }' "$WORK/sys.txt" |
  sort -t: -k2 -gr
echo
echo "## Samples by command and binary"
perf report -i "$WORK/perf.data" --stdio --sort comm,dso 2> /dev/null | grep -v '^#' | grep -v '^$' | head -20
echo
echo "## Top $TOP symbols (all CPUs)"
perf report -i "$WORK/perf.data" --stdio --sort comm,sym 2> /dev/null | grep -v '^#' | grep -v '^$' | head -"$TOP"
