#!/usr/bin/env bash
# Builds Quotum with ASan+UBSan and runs every test (unit and integration).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset dev -DBUILD_TESTING=ON >/dev/null
cmake --build --preset dev
ctest --preset dev -j2 "$@"
