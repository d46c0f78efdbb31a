#!/usr/bin/env bash
# Builds Quotum with ThreadSanitizer and runs every test (unit and integration)
# under it. Any report fails the run: tests/CMakeLists.txt sets TSAN_OPTIONS so
# that a report halts the process (a test, or the server an integration test
# started) with exit code 66, and the tests' output is searched as well, for a
# report whose exit status nobody saw (a server killed with SIGKILL, say).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset tsan -DBUILD_TESTING=ON >/dev/null
cmake --build --preset tsan
ctest --preset tsan -j2 --test-output-size-passed 10000000 "$@"
log=build/tsan/Testing/Temporary/LastTest.log
if grep -q "ThreadSanitizer" "$log"; then
  grep -n -A40 "ThreadSanitizer" "$log" | head -200
  echo "test-tsan: ThreadSanitizer reported errors in tests that passed (full output: $log)" >&2
  exit 1
fi
