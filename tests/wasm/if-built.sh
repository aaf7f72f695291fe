#!/bin/sh
# if-built.sh WASM_DIR COMMAND...: runs COMMAND if scripts/build-wasm.sh has
# built both variants into WASM_DIR (dist/, cli/ and test/); otherwise exits 77,
# which tests/wasm/CMakeLists.txt declares as ctest's "skipped".
dir=$1
shift
for v in simd128 relaxed; do
  for f in "dist/bitmamba-$v.js" "dist/bitmamba-$v.wasm" "dist/bitmamba-$v.worker.js" "dist/bitmamba-$v.worker.cjs" \
           "cli/bitmamba-$v.js" "cli/bitmamba-$v.wasm" "test/kernel-parity-$v.js"; do
    if [ ! -f "$dir/$f" ]; then
      echo "SKIP: $dir/$f is missing: build the wasm module with scripts/build-wasm.sh"
      exit 77
    fi
  done
done
exec "$@"
