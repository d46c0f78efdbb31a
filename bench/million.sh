#!/usr/bin/env bash
# Start-up time and memory with N tenants (default 1,000,000) in the shape of
# SPEC §5's target (all ten built-in meters with values, 30 days of daily
# buckets; see million_tenants.cc): generates the data directory once, then
# starts `quotum serve` on it three times and reports the time to "listening on"
# and the resident set size after start-up. The 1 M directory takes about 12 GB
# of disk and several minutes to generate; KEEP=DIR keeps it in DIR (generated
# there unless DIR holds a finished one for the same count) for later runs.
# CLOSED_PERIODS=12 gives every tenant twelve closed monthly periods as well, in
# usage_aggregates (where period close leaves them) or, with CLOSED_IN=counters,
# in the counters table (as before period close existed). JOURNAL_RECORDS=N
# leaves N unfolded journal records in the directory before each start, as a
# crash under load can (100000 is the most the writer lets wait before the
# journals give way to the group commit), so the start-up includes their replay
# (each replay adds its usage to a KEEP directory's data set).
#   TENANTS=1000000 bench/million.sh
#   KEEP=/var/tmp/quotum-1m TENANTS=1000000 bench/million.sh
#   CLOSED_PERIODS=12 TENANTS=1000000 bench/million.sh
#   JOURNAL_RECORDS=100000 KEEP=/var/tmp/quotum-1m bench/million.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TENANTS="${TENANTS:-1000000}"
KEEP="${KEEP:-}"
WORK="${KEEP:-$(mktemp -d /tmp/quotum-million.XXXXXX)}"
"$ROOT/scripts/install-deps.sh"
dpkg-query -W -f='${Status}' libbenchmark-dev 2>/dev/null | grep -q "install ok installed" ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libbenchmark-dev; }
(cd "$ROOT" && cmake --preset release -DQUOTUM_BENCH=ON -DBUILD_TESTING=OFF >/dev/null &&
  cmake --build --preset release --target quotum quotum_million_tenants quotum_journal_fill >/dev/null)
# A directory is reused only if its generation finished for the same shape.
SHAPE="$TENANTS ${CLOSED_PERIODS:-0} ${CLOSED_IN:-aggregates}"
if [[ "$(cat "$WORK/generated" 2>/dev/null)" == "$SHAPE" ]]; then
  echo "reusing $WORK/data; db $(du -h "$WORK/data/quotum.db" | cut -f1)"
else
  rm -rf "$WORK/data" "$WORK/generated"
  mkdir -p "$WORK/data"
  gen_start=$(date +%s.%N)
  "$ROOT/build/release/bench/quotum_million_tenants" "$WORK/data" "$TENANTS"
  gen_end=$(date +%s.%N)
  echo "generated in $(awk -v a="$gen_start" -v b="$gen_end" 'BEGIN { printf "%.1f", b - a }') s; db $(du -h "$WORK/data/quotum.db" | cut -f1)"
  echo "$SHAPE" > "$WORK/generated"
fi
for round in 1 2 3; do
  if ((${JOURNAL_RECORDS:-0} > 0)); then
    "$ROOT/build/release/bench/quotum_journal_fill" "$WORK/data" "$JOURNAL_RECORDS" "$TENANTS"
  fi
  t0=$(date +%s.%N)
  "$ROOT/build/release/apps/quotum/quotum" serve --config "$ROOT/examples/quotum.toml" \
    --listen 127.0.0.1:0 --data-dir "$WORK/data" --admin-key bench > "$WORK/out.log" 2>&1 &
  pid=$!
  until grep -q "listening on" "$WORK/out.log" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$WORK/out.log" >&2; exit 1; }
    sleep 0.05
  done
  t1=$(date +%s.%N)
  rss_kb=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
  replayed=$(sed -nE 's/.*: ([0-9]+) journal records to replay.*/\1/p' "$WORK/out.log")
  [[ -z "$replayed" ]] || echo "round $round: replayed $replayed journal records"
  echo "round $round: start-up $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s, RSS $(awk -v k="$rss_kb" 'BEGIN { printf "%.0f MiB (%.0f bytes/tenant)", k / 1024, k * 1024 / '"$TENANTS"' }')"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
[[ -n "$KEEP" ]] || rm -rf "$WORK"
