#!/usr/bin/env bash
# Journals against the group commit alone, alternated on one machine (loopback
# only): `journal = true` then `journal = false`, ROUNDS times, each a fresh
# data dir and server. MODE=max: wrk -t2 -c64 at full speed; MODE=half: the
# paced load of bench/peers.sh (CONNS connections, 3 ms apart on average).
# DURABILITY=process|fsync. Needs the release build (bench/peers.sh makes it).
#   MODE=half CONNS=101 ROUNDS=2 bench/journal_ab.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/build/release/apps/quotum/quotum"
MODE="${MODE:-max}" ROUNDS="${ROUNDS:-2}" CONNS="${CONNS:-101}" DURATION="${DURATION:-10}"
DURABILITY="${DURABILITY:-process}"
WORK="$(mktemp -d /tmp/quotum-journal-ab.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

run() {  # $1 journal (true|false), $2 port
  local dir="$WORK/$1-$2" key created kid pid
  mkdir -p "$dir"
  sed -e "s/^journal = true/journal = $1/" -e "s/^durability = \"process\"/durability = \"$DURABILITY\"/" \
    "$ROOT/examples/quotum.toml" > "$dir/quotum.toml"
  "$BIN" serve --config "$dir/quotum.toml" --listen "127.0.0.1:$2" --data-dir "$dir/data" \
    --admin-key bench-admin > "$dir/out.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "127.0.0.1:$2/healthz" && break; sleep 0.1; done
  created=$(curl -s -X POST "127.0.0.1:$2/admin/tenants" -H "X-API-Key: bench-admin" \
    -d '{"id":"bench","plan":"enterprise"}')
  key=$(echo "$created" | sed -E 's/.*"api_key":"([^"]+)".*/\1/')
  kid=$(echo "$created" | sed -E 's/.*"key_id":"([^"]+)".*/\1/')
  curl -s -o /dev/null -X PUT "127.0.0.1:$2/admin/api-keys/$kid/rate-limits" \
    -H "X-API-Key: bench-admin" -d '{"general":1000000000}'
  if [ "$MODE" = max ]; then
    QUOTUM_BENCH_KEY="$key" wrk -t2 -c64 -d"${DURATION}s" --latency -s "$ROOT/bench/peers/post.lua" \
      "http://127.0.0.1:$2/api/v2/quota/consume" > "$dir/wrk.txt"
  else
    QUOTUM_BENCH_DELAY_MS=3 QUOTUM_BENCH_KEY="$key" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency \
      -s "$ROOT/bench/peers/paced.lua" "http://127.0.0.1:$2/api/v2/quota/consume" > "$dir/wrk.txt"
  fi
  echo "| $1 | $DURABILITY | $MODE | $(awk '/^Requests\/sec/ { print $2 }' "$dir/wrk.txt") |" \
    "$(awk '$1 == "50%" { print $2 }' "$dir/wrk.txt") | $(awk '$1 == "99%" { print $2 }' "$dir/wrk.txt") |"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

echo "| journal | durability | load | requests/s | p50 | p99 |"
echo "|---|---|---|---:|---:|---:|"
for r in $(seq 1 "$ROUNDS"); do
  run true $((18900 + r))
  run false $((18950 + r))
done
