#!/usr/bin/env bash
# The dashboard's and the OpenAPI description's checks (docs/testing.md, "Browser tests"):
#  1. rebuilds web/dist and fails if the committed assets differ from the build;
#  2. lints docs/openapi.yaml with Redocly (web/redocly.yaml: zero problems allowed);
#  3. runs web/tests/ (node's test runner): the browser tests (playwright-core driving
#     Debian's chromium), the description against `quotum routes` and against live
#     responses, all on a real `quotum serve` started from QUOTUM_BINARY (default: the
#     dev preset's build/dev/apps/quotum/quotum).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --web
scripts/build-web.sh
if ! git diff --exit-code --stat -- web/dist || [ -n "$(git status --porcelain -- web/dist)" ]; then
  echo "web/dist is stale: the committed dashboard assets differ from a build of web/src." >&2
  echo "Run scripts/build-web.sh and commit web/dist." >&2
  exit 1
fi
cd web
npm run lint:api
npm test
