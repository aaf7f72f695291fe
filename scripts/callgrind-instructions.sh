#!/usr/bin/env bash
# Instructions per generated token at 1 thread on the AVX2 path, counted by
# callgrind: runs `bitmamba bench` twice with different --gen-tokens and
# divides the difference by the extra tokens, so load, prefill and start-up
# cancel out.
#   scripts/callgrind-instructions.sh MODEL [--isa avx2] [--bin build/release/cli/bitmamba]
# valgrind cannot run AVX-512 or AVX-VNNI code, so pick a table without them.
set -euo pipefail

usage() { echo "usage: $0 MODEL [--isa ISA] [--bin PATH] [--tokens N]" >&2; exit 2; }
[ $# -ge 1 ] || usage
model=$1
shift
isa=avx2
bin="$(cd "$(dirname "$0")/.." && pwd)/build/release/cli/bitmamba"
tokens=8
while [ $# -gt 0 ]; do
  case $1 in
    --isa) isa=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    *) usage ;;
  esac
done
command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 1; }
[ -x "$bin" ] || { echo "no CLI at $bin (build first, or pass --bin)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Total instructions (Ir) of one bench run generating $1 tokens.
count() {
  valgrind --tool=callgrind --callgrind-out-file="$work/out.$1" \
    "$bin" bench "$model" --threads 1 --isa "$isa" --prompt-tokens 1 --gen-tokens "$1" --runs 1 \
    >"$work/log.$1" 2>&1 || { cat "$work/log.$1" >&2; exit 1; }
  awk '/^(summary|totals):/ { print $2; exit }' "$work/out.$1"
}

base=2
a=$(count $base)
b=$(count $((base + tokens)))
per=$(( (b - a) / tokens ))
echo "isa $isa: $a instructions with $base generated tokens, $b with $((base + tokens))"
printf 'instructions per generated token: %d (%.2f million)\n' "$per" "$(echo "$per / 1000000" | bc -l)"
