#!/usr/bin/env bash
# Writes build/site/, a folder any static host serves as it is: the demo page,
# the bench page, the API and its worker, the wasm builds (and the SHA-256
# module that checks downloads) in dist/, the
# opt-in cross-origin-isolation service worker (coi-sw.js), a _headers file
# (COOP/COEP/CSP, for hosts that read one: Netlify, Cloudflare Pages) and,
# with --with-demo-model, the offline demo model in models/.
#
#   scripts/build-site.sh [--with-demo-model] [--out DIR] [--cli PATH]
#
# Needs the wasm build (scripts/build-wasm.sh; exits 77 without it, as the
# site tests skip then) and, for the demo model, the native CLI (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/site
cli=build/release/cli/bitmamba
with_model=0
while (($#)); do
  case "$1" in
    --with-demo-model) with_model=1 ;;
    --out) out="$2"; shift ;;
    --cli) cli="$2"; shift ;;
    *) echo "build-site: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=scripts/wasm-dist.sh
. scripts/wasm-dist.sh
require_wasm_dist build-site

rm -rf "$out"
mkdir -p "$out/dist"
# The pages and every module they load; the types are for the package only.
find web -maxdepth 1 -type f ! -name '*.d.ts' -exec cp {} "$out/" \;
copy_wasm_dist "$out/dist"

if ((with_model)); then
  mkdir -p "$out/models"
  if ! log=$("$cli" make-model --preset tiny --seed 1 --out "$out/models/bitmamba-demo.bin" 2>&1); then
    echo "build-site: making the demo model failed: $log" >&2
    exit 1
  fi
fi

# The headers the local server sends (scripts/serve.mjs), for every path.
csp=$(node --input-type=module -e "import('./scripts/serve.mjs').then((m) => console.log(m.CONTENT_SECURITY_POLICY))")
cat >"$out/_headers" <<HEADERS
/*
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
  Content-Security-Policy: $csp
HEADERS
# GitHub Pages: serve the files as they are, without Jekyll.
touch "$out/.nojekyll"

echo "build-site: $out ($(du -sh "$out" | cut -f1))"
