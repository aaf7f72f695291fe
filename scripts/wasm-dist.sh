# shellcheck shell=bash
# Sourced by scripts/build-package.sh and scripts/build-site.sh: the files of
# the wasm build that every way of shipping the runtime carries (both engine
# builds and the SHA-256 module that checks downloads), where
# scripts/build-wasm.sh writes them.

WASM_DIST=build/wasm/dist
WASM_DIST_FILES=(bitmamba-simd128.{js,wasm,worker.js} bitmamba-relaxed.{js,wasm,worker.js} bitmamba-sha256.wasm)

# Exits 77 (the status the tests that need the wasm build skip on) when a
# file is missing; $1 names the caller in the message.
require_wasm_dist() {
  local f
  for f in "${WASM_DIST_FILES[@]}"; do
    if [ ! -f "$WASM_DIST/$f" ]; then
      echo "$1: $WASM_DIST/$f is missing; run scripts/build-wasm.sh" >&2
      exit 77
    fi
  done
}

# Copies them into the folder $1.
copy_wasm_dist() {
  local f
  for f in "${WASM_DIST_FILES[@]}"; do cp "$WASM_DIST/$f" "$1/"; done
}
