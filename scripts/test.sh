#!/usr/bin/env bash
# Builds Quotum and runs every test:
#  1. ASan+UBSan build (preset dev): unit, integration (the real binary on port 0,
#     crash loop, isolation table, hostile clients) and the fuzz corpora replayed;
#  2. the dashboard: web/dist rebuilt and compared with the committed one, then
#     the browser tests against the dev build's binary (scripts/test-web.sh);
#  3. ThreadSanitizer build (preset tsan): the same tests, zero reports allowed.
# Extra arguments go to the first ctest run (e.g. -R Edge).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset dev -DBUILD_TESTING=ON >/dev/null
cmake --build --preset dev
ctest --preset dev -j2 "$@"
QUOTUM_BINARY="$PWD/build/dev/apps/quotum/quotum" scripts/test-web.sh
scripts/test-tsan.sh
