#!/usr/bin/env bash
# Rebuilds the dashboard's committed assets (web/dist) from web/src with the
# versions pinned in web/package-lock.json. Commit web/dist afterwards: the
# quotum binary embeds it at build time, so scripts/run.sh needs no npm.
set -euo pipefail
cd "$(dirname "$0")/../web"
npm ci --no-audit --no-fund --loglevel=error
npm run build
