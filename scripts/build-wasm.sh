#!/usr/bin/env bash
# Builds both WebAssembly variants (CMake presets wasm-simd128 and
# wasm-relaxed, configured through emcmake) into build/wasm/dist/:
#   bitmamba-simd128.{js,wasm,worker.js}  bitmamba-relaxed.{js,wasm,worker.js}
# (plus a .worker.cjs copy of each worker script for Node), and the Node test
# programs into build/wasm/test/. Needs Debian's emscripten, and clang-16 +
# lld-16 for the relaxed-SIMD kernels (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in emcmake emcc node clang-16; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-wasm: $tool not found; run scripts/setup.sh" >&2
    exit 1
  fi
done
# Debian's Emscripten finds its JS tools (acorn) through NODE_PATH.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}

for variant in simd128 relaxed; do
  echo "== wasm $variant"
  emcmake cmake --preset "wasm-$variant" -G Ninja >/dev/null
  cmake --build "build/wasm/$variant" -j"$(nproc)"
done
ls -l build/wasm/dist/
