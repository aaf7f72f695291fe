#!/usr/bin/env bash
# Packs the npm package bitmamba-web into build/package/bitmamba-web-<version>.tgz
# (npm pack; nothing is published): the page-side API and its worker from
# web/, both wasm builds and the SHA-256 module from build/wasm/dist/, the types, and the package's
# own package.json and README from package/. The files keep web/'s layout,
# which is how every runtime URL resolves: relative to the module asking.
#
#   scripts/build-package.sh [--dry-run]   # --dry-run: list what would be packed
#
# Exits 77 (nothing packed) without the wasm build, as the tests that use
# the tarball skip then.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/wasm-dist.sh
. scripts/wasm-dist.sh
stage=build/package/stage
rm -rf "$stage" build/package/bitmamba-web-*.tgz
require_wasm_dist build-package

mkdir -p "$stage/dist"
cp package/package.json package/README.md "$stage/"
# The runtime modules: the API, the worker and everything they import (the
# package-contents test checks that no import is left out, and that
# package.json's "files" lists exactly what is staged here).
cp web/{bitmamba.js,bitmamba.d.ts,bit2.js,download.js,errors.js,hash-worker.js,heap-sink.js,loader.js,model-cache.js,sha256.js,sha256-wasm.js,wasm-engine.js,worker.js} "$stage/"
copy_wasm_dist "$stage/dist"

if [ "${1:-}" = "--dry-run" ]; then
  (cd "$stage" && npm pack --dry-run --loglevel=notice)
  exit 0
fi
(cd "$stage" && npm pack --pack-destination .. --loglevel=warn)
