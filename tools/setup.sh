#!/usr/bin/env bash
# Installs what comfy.cpp needs to build and test on Debian 12. Idempotent: packages already
# present are not touched, so a second run costs a dpkg query and nothing else.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config ccache
  libtorch-dev libdnnl-dev
  libboost-dev libboost-system-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libpng-dev libjpeg-dev libwebp-dev
  libssl-dev libcurl4-openssl-dev libsqlite3-dev libpcre2-dev libicu-dev libsentencepiece-dev
  libgtest-dev
  chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the npm client tests (tests/clients): Debian's, unless some node is there.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The web UI (web/): its build tools and playwright-core, pinned in web/package-lock.json. The
# web tests drive Debian's chromium (above); no browser is ever downloaded.
web="$(dirname "$0")/../web"
if [ ! -f "$web/node_modules/.package-lock.json" ] ||
   [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  echo "setup: npm ci in web"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
fi
# The ComfyUI clients the tests drive, at the versions pinned in tests/clients/package-lock.json
# (npm ci again only when the lock file is newer than what is installed).
clients="$(dirname "$0")/../tests/clients"
if [ ! -f "$clients/node_modules/.package-lock.json" ] ||
   [ "$clients/package-lock.json" -nt "$clients/node_modules/.package-lock.json" ]; then
  echo "setup: npm ci in tests/clients"
  (cd "$clients" && npm ci --no-audit --no-fund --loglevel=error)
fi
