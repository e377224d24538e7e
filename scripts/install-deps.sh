#!/usr/bin/env bash
# Installs the Debian packages the engine builds and tests with (Debian 12).
# Usage: scripts/install-deps.sh [--test]   (--test adds what the test suite needs)
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libpng-dev libjpeg62-turbo-dev libwebp-dev zlib1g-dev
  nlohmann-json3-dev libcpp-httplib-dev libonig-dev libutf8proc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
if [[ "${1:-}" == "--test" ]]; then
  # python3-numpy runs the shared compare tool; python3-pil is the independent Pillow
  # reference of the image tests; chromium + nodejs/npm run the browser test; nginx the
  # load-balancer test.
  packages+=(python3 python3-numpy python3-pil chromium nginx-light wrk)
  # Node.js may come from elsewhere (NodeSource bundles npm, and then conflicts with
  # Debian's npm): only install Debian's when the commands are missing.
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
