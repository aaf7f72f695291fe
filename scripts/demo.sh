#!/usr/bin/env bash
# The main job: set up a fresh machine, build everything, make the offline
# demo model, and serve the page (with COOP/COEP, so threads work). Prints
# the URL to open. Extra arguments go to the server (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
mkdir -p build/demo
if [ ! -f build/demo/bitmamba-demo.bin ]; then
  build/release/cli/bitmamba make-model --preset tiny --seed 1 --out build/demo/bitmamba-demo.bin
fi
exec node scripts/serve.mjs "$@"
