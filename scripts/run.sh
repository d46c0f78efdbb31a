#!/usr/bin/env bash
# Builds Quotum (release) and starts it on the embedded default config:
# examples/quotum.toml, data in ./data, http://127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release -DBUILD_TESTING=OFF >/dev/null
cmake --build --preset release
mkdir -p data
if [ -z "${QUOTUM_ADMIN_KEY:-}" ]; then
  [ -s data/admin.key ] || (umask 077; echo "qa_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" > data/admin.key)
  QUOTUM_ADMIN_KEY=$(head -n1 data/admin.key)
fi
export QUOTUM_ADMIN_KEY
LISTEN="${QUOTUM_LISTEN:-127.0.0.1:8080}"
echo "Quotum:    http://${LISTEN}"
echo "Admin key: ${QUOTUM_ADMIN_KEY}   (send as X-API-Key on /admin routes; kept in data/admin.key)"
exec build/release/apps/quotum/quotum serve --config examples/quotum.toml --listen "$LISTEN" --data-dir data
