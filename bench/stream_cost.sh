#!/usr/bin/env bash
# What open usage streams cost the consume path, and how soon a change shows
# on a stream. One embedded Quotum (release build, durability "process") on
# loopback; wrk (2 threads, 64 connections) POSTs consumes of one tenant.
# Each round measures DURATION seconds with no stream open, then the same
# with STREAMS streams open (4 on the consuming tenant, the rest on other
# tenants, 4 each), alternating; medians over ROUNDS rounds. Then LATENCY
# consumes, each timed from its answer to its event on an open stream.
#   DURATION=10 ROUNDS=3 STREAMS=44 bench/stream_cost.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/bench_tenant.sh"  # median
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
STREAMS="${STREAMS:-44}"
LATENCY="${LATENCY:-20}"
PORT=18811
WORK="$(mktemp -d /tmp/quotum-streams.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
BASE="http://127.0.0.1:$PORT"

for p in wrk python3 curl; do
  command -v "$p" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends wrk python3 curl >/dev/null; break; }
done

(cd "$ROOT" && cmake --preset release -DBUILD_TESTING=OFF >/dev/null &&
  cmake --build --preset release --target quotum >/dev/null)
"$ROOT/build/release/apps/quotum/quotum" serve --config "$ROOT/examples/quotum.toml" \
  --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --admin-key bench-admin > "$WORK/out.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done

tenant() {  # $1 id: prints "key key_id"
  curl -s -X POST "$BASE/admin/tenants" -H "X-API-Key: bench-admin" -d "{\"id\":\"$1\",\"plan\":\"enterprise\"}" |
    python3 -c 'import json,sys; o=json.load(sys.stdin); print(o["api_key"], o["key_id"])'
}
read -r KEY KEY_ID < <(tenant bench)
curl -s -o /dev/null -X PUT "$BASE/admin/api-keys/$KEY_ID/rate-limits" -H "X-API-Key: bench-admin" \
  -d '{"general":1000000000}'
STREAM_KEYS=()
for i in $(seq 0 $(((STREAMS - 1) / 4))); do
  if ((i == 0)); then k=$KEY; else read -r k _ < <(tenant "watcher-$i"); fi
  for _ in 1 2 3 4; do ((${#STREAM_KEYS[@]} < STREAMS)) && STREAM_KEYS+=("$k"); done
done

rate() {  # one wrk run; prints requests/s
  QUOTUM_BENCH_KEY="$KEY" wrk -t2 -c64 -d"${DURATION}s" -s "$ROOT/bench/peers/post.lua" \
    "$BASE/api/v2/quota/consume" | awk '/^Requests\/sec/ { print $2 }'
}

without=() with=() events=()
for r in $(seq 1 "$ROUNDS"); do
  without+=("$(rate)")
  CURLS=()
  for i in "${!STREAM_KEYS[@]}"; do
    curl -sN -H "X-API-Key: ${STREAM_KEYS[$i]}" "$BASE/api/v2/usage/stream" > "$WORK/stream-$r-$i.txt" &
    CURLS+=($!)
  done
  sleep 1
  with+=("$(rate)")
  kill "${CURLS[@]}" 2>/dev/null || true
  wait "${CURLS[@]}" 2>/dev/null || true
  events+=("$(cat "$WORK"/stream-"$r"-*.txt | grep -c '^event: usage' || true)")
  echo "round $r: without ${without[-1]}/s, with $STREAMS streams ${with[-1]}/s, ${events[-1]} events" >&2
done
W=$(printf '%s\n' "${without[@]}" | median)
S=$(printf '%s\n' "${with[@]}" | median)

# Latency: a consume's answer to its event on an open stream.
LAT=$(python3 - "$PORT" "$KEY" "$LATENCY" <<'PY'
import socket, sys, time, json, urllib.request
port, key, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(f"GET /api/v2/usage/stream HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n".encode())
buf = b""
def read_until(needle):
    global buf
    while needle not in buf:
        buf += s.recv(65536)
read_until(b"event: usage")
times = []
for i in range(n):
    buf = b""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/quota/consume", method="POST",
        data=b'{"meter":"messages_received","quantity":1}', headers={"X-API-Key": key})
    used = json.load(urllib.request.urlopen(req))
    t0 = time.monotonic()
    read_until(b'"messages_received"')
    times.append((time.monotonic() - t0) * 1000)
    time.sleep(0.05)
times.sort()
print(f"{times[len(times)//2]:.0f} {times[-1]:.0f}")
PY
)
read -r LAT_P50 LAT_MAX <<< "$LAT"
echo
echo "| consume rate, no stream | with $STREAMS streams | ratio | change to event, median | max |"
echo "|---|---|---|---|---|"
awk -v w="$W" -v s="$S" -v p="$LAT_P50" -v m="$LAT_MAX" \
  'BEGIN { printf "| %.0f/s | %.0f/s | %.3f | %s ms | %s ms |\n", w, s, s / w, p, m }'
