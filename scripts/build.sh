#!/usr/bin/env bash
# Builds the native release (CLI, tests, benchmarks) and both wasm variants.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release -G Ninja >/dev/null
cmake --build build/release -j"$(nproc)"
if [ -x scripts/build-wasm.sh ]; then
  scripts/build-wasm.sh
fi
