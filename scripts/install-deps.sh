#!/usr/bin/env bash
# Installs the Debian 12 packages Quotum builds and tests with, if missing,
# and any extra packages named as arguments (scripts/fuzz.sh adds clang).
# --web adds what the dashboard's build and browser tests need (scripts/test-web.sh):
# chromium, and nodejs + npm unless an npm is on PATH already (a NodeSource nodejs
# carries its own npm and conflicts with Debian's npm package).
set -euo pipefail
extra=()
for arg in "$@"; do
  if [ "$arg" = "--web" ]; then
    extra+=(chromium)
    command -v npm >/dev/null 2>&1 || extra+=(nodejs npm)
  else
    extra+=("$arg")
  fi
done
packages=(
  build-essential cmake ninja-build pkg-config curl
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev libssl-dev zlib1g-dev libcurl4-openssl-dev libtomlplusplus-dev libabsl-dev libcli11-dev
  libgtest-dev libgmock-dev libgoogle-perftools-dev
  prometheus
  redis-server libhiredis-dev postgresql libpq-dev
  libcairo2-dev fonts-dejavu-core poppler-utils
  ${extra[@]+"${extra[@]}"}
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
