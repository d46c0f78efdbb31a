#!/usr/bin/env bash
# The cost inside Redis of the decision script (store/redis/lua/), per call,
# two ways:
#   us/call  INFO commandstats' usec_per_call for EVALSHA: the wall time of the
#            script in Redis (its redis.call()s included, the client's not).
#            A busy machine that preempts Redis mid-script inflates it.
#   cpu/call the CPU time of Redis' main thread (INFO cpu, used_cpu_*_main_thread)
#            over the run, divided by the calls: the script plus reading the
#            requests and writing the replies (pipelined 10 deep, so little),
#            and not inflated by preemption.
#   instr/call  with -V: Redis runs under valgrind (callgrind), and the column
#            is the instructions Redis executed per call: the same on a loaded
#            machine as on an idle one, the measure to compare variants by.
#            (Slow: use -n 1000 or so.)
#
#   bench/lua_cost.sh [-n CALLS] [-r ROUNDS] [-p PORT] [-P PROGRAMS] [-V] DIR...
#
# Each DIR holds arith.lua, limiter.lua and decide.lua (e.g. the tree's
# src/quotum/store/redis/lua, or a copy taken with `git show`). The body is
# composed as RedisLedger::DecisionScript() does, and KEYS/ARGV are those
# RedisLedger::DecisionKeys/Arguments send for a consume of 1 unit with a
# quota limit, count_api_call, no warm-up, no idempotency key, now from Redis
# TIME, and the decision's facts (a 102-byte payload like EncodeFacts' for a
# consume without a message), so that every call appends one entry to the
# tenant's facts stream. Programs:
#   empty     `return 1`
#   library   arith.lua + limiter.lua + `return 1`
#   norate    a decision without rate checks
#   sliding   + one sliding_window check (1 min, limit 10^9), previous minute
#             empty: the estimate's fast path
#   sliding-big  the same with 10^6 units in the previous minute (the
#             benchmark's case): b * (W - e) > 2^52
#   bucket-fixed  + token_bucket and fixed_window checks (1 min, limit 10^9)
#   topups    norate with a limit of 1 and one top-up that never lapses: every
#             unit after the first is drawn from it (a top-up's whole path)
# Every round runs every (DIR, program) once, in turn, so that variants are
# compared back to back on a loaded machine; the table gives each one's median
# and range over the rounds. Needs redis-server, redis-cli, redis-benchmark.
set -euo pipefail

CALLS=20000
ROUNDS=5
PORT=
PROGRAMS="empty library norate sliding sliding-big bucket-fixed"
VALGRIND=
while getopts "n:r:p:P:V" opt; do
  case $opt in
    n) CALLS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    p) PORT=$OPTARG ;;
    P) PROGRAMS=$OPTARG ;;
    V) VALGRIND=1 ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-n CALLS] [-r ROUNDS] [-p PORT] [-P 'programs'] DIR..." >&2; exit 2; }

if [ -z "$PORT" ]; then
  PORT=$((20000 + RANDOM % 20000))
  while ss -ltn | awk '{print $4}' | grep -q ":$PORT\$"; do PORT=$((PORT + 1)); done
fi
WORK=$(mktemp -d)
${VALGRIND:+valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out"} \
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --dir "$WORK" > "$WORK/redis.log" 2>&1 &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
cli() { redis-cli -p "$PORT" "$@"; }
for _ in $(seq 200); do cli PING >/dev/null 2>&1 && break; sleep 0.1; done

# The body as cmake/EmbedText.cmake + DecisionScript() compose it.
library() { printf -- '-- arith.lua\n%s\n-- limiter.lua\n%s\n' "$(cat "$1/arith.lua")" "$(cat "$1/limiter.lua")"; }
body() {
  case $2 in
    empty) printf 'return 1\n' ;;
    library) library "$1"; printf 'return 1\n' ;;
    *) library "$1"; printf '\n-- decide.lua\n%s\n' "$(cat "$1/decide.lua")" ;;
  esac
}

T='{bench}'
PERIOD=1796083200
KEYS=("$T:u:$PERIOD:messages_sent" "$T:u:$PERIOD:api_calls" "$T:w:-" "$T:i:-" "$T:baseline" "$T:f"
  "$T:sessions" "$T:leases")
FACTS='{"meter":"messages_sent","channel":"sms","period":1796083200,"at":1796126400,"now":1796126400,"qty":1}'
# ARGV 1-15, then 16-17: no session.
ARGS=(x "" "" 00100 1234567890123 86400000 1 1000000000000000 0 0 1801000000000 0 0 0 "$FACTS" "" "")
# After the rate checks: no credits check (its key, and its four arguments),
# then the reservation placeholders (messages_sent is never held: "-"), then
# no top-ups (two placeholder keys, two counts of 0).
CKEYS=("$T:c:-" "$T:h:-" "$T:hx:-" "$T:tu:-" "$T:tu:-")
CARGS=(0 "" 0 0 - "" 0 0 0)
W=60000000000
rates() {  # the rate keys and arguments of a program
  case $1 in
    norate | topups) RKEYS=(); RARGS=(0) ;;
    sliding | sliding-big)
      RKEYS=("$T:r:general:$W:k1"); RARGS=(1 sliding_window 1000000000 $W 1 0) ;;
    bucket-fixed)
      RKEYS=("$T:r:general:$W:k2" "$T:r:general:$W:k3")
      RARGS=(2 token_bucket 1000000000 $W 1 0 fixed_window 1000000000 $W 1 0) ;;
  esac
}

# usec_per_call of EVALSHA after CALLS calls of program $2 of dir $1.
run() {
  local dir=$1 prog=$2 sha
  sha=$(body "$dir" "$prog" | cli -x SCRIPT LOAD)
  cli FLUSHALL >/dev/null
  cli SET "$T:baseline" 1 >/dev/null
  local cmd=(EVALSHA "$sha")
  if [ "$prog" = empty ] || [ "$prog" = library ]; then
    cmd+=(0)
  else
    rates "$prog"
    local args=("${ARGS[@]}") ckeys=("${CKEYS[@]}") cargs=("${CARGS[@]}")
    if [ "$prog" = topups ]; then
      args[7]=1
      ckeys[3]="$T:tu:messages_sent"
      cargs=(0 "" 0 0 - "" 0 1 tb 1000000000000 "" 0)
    fi
    cmd+=($((${#KEYS[@]} + ${#RKEYS[@]} + ${#ckeys[@]})) "${KEYS[@]}" "${RKEYS[@]}" "${ckeys[@]}"
      "${args[@]}" "${RARGS[@]}" "${cargs[@]}")
  fi
  if [ "$prog" = sliding-big ]; then
    # Bucket k of Redis' clock; a run that crosses into k + 1 is redone.
    local k
    k=$(( $(cli TIME | head -1) / 60 ))
    cli SET "${RKEYS[0]}" "S:$k:1000000:0" >/dev/null
  fi
  cli CONFIG RESETSTAT >/dev/null
  local cpu0 cpu1
  cpu0=$(cpu)
  [ -z "$VALGRIND" ] || callgrind_control -z "$REDIS_PID" >/dev/null
  redis-benchmark -p "$PORT" -c 1 -P 10 -n "$CALLS" -q "${cmd[@]}" >/dev/null
  if [ -n "$VALGRIND" ]; then
    rm -f "$WORK"/callgrind.out.*
    callgrind_control -d "$REDIS_PID" >/dev/null
  fi
  cpu1=$(cpu)
  if [ -n "$VALGRIND" ]; then
    cpu0=0
    cpu1=$(awk '/^totals:/ { print $2 / 1e6 }' "$WORK"/callgrind.out.*)
  fi
  local stats
  stats=$(cli INFO commandstats | tr -d '\r')
  if ! grep -q '^cmdstat_evalsha:calls='"$CALLS"',' <<<"$stats"; then
    echo "$prog ($dir): not $CALLS successful calls:" >&2
    grep -E 'evalsha|errorstat' <<<"$stats" >&2
    cli EVALSHA "${cmd[@]:1}" >&2
    exit 1
  fi
  if [ "$prog" = sliding-big ] && [ "$(cli GET "${RKEYS[0]}" | cut -d: -f2)" != "$k" ]; then
    run "$@"
    return
  fi
  local us
  us=$(grep '^cmdstat_evalsha:' <<<"$stats" | sed 's/.*usec_per_call=\([0-9.]*\).*/\1/')
  echo "$us $(awk -v a="$cpu0" -v b="$cpu1" -v n="$CALLS" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')"
}
# Seconds of CPU of Redis' main thread so far.
cpu() {
  cli INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user)_main_thread:/ { t += $2 } END { printf "%.6f", t }'
}

declare -A US CPU
for r in $(seq "$ROUNDS"); do
  for prog in $PROGRAMS; do
    for dir in "$@"; do
      read -r us cpu_us < <(run "$dir" "$prog")
      US["$dir|$prog"]+="$us "
      CPU["$dir|$prog"]+="$cpu_us "
    done
  done
  echo "round $r done" >&2
done

stat() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
  m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "%.2f (%.2f-%.2f)", m, v[1], v[NR] }'; }
COL=${VALGRIND:+instr/call}
COL=${COL:-cpu/call}
printf '%s\n' "Per EVALSHA in Redis, median (min-max) of $ROUNDS rounds of $CALLS calls: us/call | $COL"
printf '| program |'; for dir in "$@"; do printf ' %s us/call | %s |' "$dir" "$COL"; done; printf '\n'
for prog in $PROGRAMS; do
  printf '| %s |' "$prog"
  for dir in "$@"; do
    printf ' %s | %s |' "$(stat <<<"${US["$dir|$prog"]}")" "$(stat <<<"${CPU["$dir|$prog"]}")"
  done
  printf '\n'
done
