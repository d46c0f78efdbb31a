#!/usr/bin/env bash
# Two or more variants of the server alternated on one machine (loopback only):
# each round runs every variant in turn, each on a fresh data dir and server.
# A variant is LABEL=BINARY:JOURNAL (BINARY empty: the release build; JOURNAL
# true|false sets server.journal). MODE=max: wrk -t2 -c64 at full speed;
# MODE=half: the paced load of bench/peers.sh (CONNS connections, 3 ms apart on
# average). DURABILITY=process|fsync.
#   bench/ab.sh journal=:true group=:false              (journals against the group commit)
#   bench/ab.sh base=/tmp/quotum-base:true new=:true     (a saved binary against the build)
#   MODE=half CONNS=101 ROUNDS=2 bench/ab.sh ...
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/bench_tenant.sh"
RELEASE="$ROOT/build/release/apps/quotum/quotum"
MODE="${MODE:-max}" ROUNDS="${ROUNDS:-2}" CONNS="${CONNS:-101}" DURATION="${DURATION:-10}"
DURABILITY="${DURABILITY:-process}"
WORK="$(mktemp -d /tmp/quotum-ab.XXXXXX)"
SERVER=""
trap '[[ -n "$SERVER" ]] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT
(($# >= 2)) || { echo "usage: bench/ab.sh LABEL=BINARY:JOURNAL LABEL=BINARY:JOURNAL ..." >&2; exit 2; }

run() {  # $1 variant (LABEL=BINARY:JOURNAL), $2 port
  local label=${1%%=*} spec=${1#*=} bin journal dir key pid
  bin=${spec%:*} journal=${spec##*:}
  bin=${bin:-$RELEASE}
  [[ "$spec" == *:* && ( "$journal" == true || "$journal" == false ) ]] ||
    { echo "bad variant \"$1\": LABEL=BINARY:true or LABEL=BINARY:false" >&2; exit 2; }
  require_free_port "$2"
  dir="$WORK/$label-$2"
  mkdir -p "$dir"
  sed -e "s/^journal = true/journal = $journal/" -e "s/^durability = \"process\"/durability = \"$DURABILITY\"/" \
    "$ROOT/examples/quotum.toml" > "$dir/quotum.toml"
  "$bin" serve --config "$dir/quotum.toml" --listen "127.0.0.1:$2" --data-dir "$dir/data" \
    --admin-key bench-admin > "$dir/out.log" 2>&1 &
  pid=$!
  SERVER=$pid
  for _ in $(seq 1 100); do curl -s -o /dev/null "127.0.0.1:$2/healthz" && break; sleep 0.1; done
  create_bench_tenant "$2"
  key=$KEY
  if [ "$MODE" = max ]; then
    QUOTUM_BENCH_KEY="$key" wrk -t2 -c64 -d"${DURATION}s" --latency -s "$ROOT/bench/peers/post.lua" \
      "http://127.0.0.1:$2/api/v2/quota/consume" > "$dir/wrk.txt"
  else
    QUOTUM_BENCH_DELAY_MS=3 QUOTUM_BENCH_KEY="$key" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency \
      -s "$ROOT/bench/peers/paced.lua" "http://127.0.0.1:$2/api/v2/quota/consume" > "$dir/wrk.txt"
  fi
  echo "| $label | $DURABILITY | $MODE | $(awk '/^Requests\/sec/ { print $2 }' "$dir/wrk.txt") |" \
    "$(awk '$1 == "50%" { print $2 }' "$dir/wrk.txt") | $(awk '$1 == "99%" { print $2 }' "$dir/wrk.txt") |"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  SERVER=""
}

echo "| variant | durability | load | requests/s | p50 | p99 |"
echo "|---|---|---|---:|---:|---:|"
for r in $(seq 1 "$ROUNDS"); do
  i=0
  for v in "$@"; do
    run "$v" $((18900 + 20 * i + r))
    i=$((i + 1))
  done
done
