#!/usr/bin/env bash
# Builds the libFuzzer targets (preset fuzz: clang, ASan+UBSan) and runs each
# for SECONDS (default 60) on a temp copy of its committed corpus,
# tests/fuzz/corpus/<target>/. Prints executions per target; exits 1 if any
# target crashed, leaked, timed out or ran out of memory, with the input
# saved in tests/fuzz/crashes/ (to fix, then add to the corpus).
#   FUZZ_TARGETS="query period"  run only these targets
#   FUZZ_MERGE=1                 merge what the run found into the committed
#                                corpus (libFuzzer -merge=1 keeps only inputs
#                                that add coverage)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
targets=(${FUZZ_TARGETS:-http_request json_body query config period})

# clang and its compiler-rt (libFuzzer and the sanitizer runtimes).
scripts/install-deps.sh clang libclang-rt-14-dev

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target "${targets[@]/%/_fuzzer}"

work="$(mktemp -d /tmp/quotum-fuzz-run.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# The API targets' SQLite store lives in TMPDIR: keep it in memory when we can.
[ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR="${TMPDIR:-/dev/shm}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
failed=()
summary=()
for t in "${targets[@]}"; do
  bin="build/fuzz/tests/fuzz/${t}_fuzzer"
  corpus="$work/$t/corpus"
  mkdir -p "$corpus" "$work/$t/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$corpus"/
  opts=()
  [ -f "tests/fuzz/$t.dict" ] && opts+=(-dict="tests/fuzz/$t.dict")
  # The API targets keep engine state from one input to the next, so nearly
  # every input allocates more than it frees and libFuzzer would run a leak
  # scan after each (4x slower); leaks are still checked at exit.
  case "$t" in http_request | json_body | query) opts+=(-detect_leaks=0) ;; esac
  echo "== $t: ${seconds}s"
  rc=0
  "$bin" "$corpus" "${opts[@]}" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$work/$t/artifacts/" >"$work/$t/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t/log" | tail -1)
  result="ok"
  if [ "$rc" -ne 0 ]; then
    result="FAILED (exit $rc)"
    failed+=("$t")
    mkdir -p tests/fuzz/crashes
    for a in "$work/$t/artifacts"/*; do
      [ -e "$a" ] || continue
      cp "$a" "tests/fuzz/crashes/$t-$(basename "$a")"
      result="$result, input saved as tests/fuzz/crashes/$t-$(basename "$a")"
    done
    grep -E "ERROR|runtime error|fuzz:|SUMMARY|Test unit written" "$work/$t/log" | head -20 || true
  elif [ "${FUZZ_MERGE:-0}" = 1 ]; then
    "$bin" -merge=1 tests/fuzz/corpus/"$t" "$corpus" >"$work/$t/merge.log" 2>&1
  fi
  summary+=("$(printf '%-14s %12s execs %8s exec/s  %s' "$t" "${execs:-?}" "${rate:-?}" "$result")")
done
echo "== fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: crashes in: ${failed[*]} (inputs in tests/fuzz/crashes/)" >&2
  exit 1
fi
