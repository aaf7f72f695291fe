#!/usr/bin/env bash
# Sets up a fresh machine and runs every test: native (release), the same
# suite under ASan + UBSan, the wasm builds under Node, the browser tests
# in Chromium, Firefox ESR and WebKitGTK, and each fuzz target for 20 s.
# The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh

echo "== native release: unit, golden, tokenizer, wasm parity and browser tests (three engines)"
ctest --test-dir build/release --output-on-failure -j2

echo "== ASan + UBSan"
cmake --preset sanitize -G Ninja >/dev/null
cmake --build build/sanitize -j"$(nproc)"
ctest --test-dir build/sanitize --output-on-failure -j2

echo "== fuzz smoke: each libFuzzer target for 20 s over its seed corpus"
FUZZ_OUT=build/fuzz/smoke scripts/fuzz.sh 20
