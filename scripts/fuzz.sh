#!/usr/bin/env bash
# fuzz.sh [SECONDS]: builds the libFuzzer targets (preset `fuzz`) and runs
# each for SECONDS (default 60) over its seed corpus in tests/fuzz/corpus/,
# and the fast-check properties of the JS header reader (bit2_header) for as
# long, two at a time, niced. New inputs go to $FUZZ_OUT/corpus/<target>/ (the
# committed seeds stay as they are), the log to $FUZZ_OUT/<target>.log; a
# crash leaves its input in $FUZZ_OUT/findings/<target>/ and fails the script.
#   FUZZ_TARGETS="model_file cli_args" scripts/fuzz.sh 600
#   FUZZ_JOBS=1 runs them one after another; FUZZ_OUT defaults to build/fuzz/run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
targets=${FUZZ_TARGETS:-model_file tokenizer_encode tokenizer_decode utf8_decoder session_restore cli_args bit2_header}
jobs=${FUZZ_JOBS:-2}
out=${FUZZ_OUT:-build/fuzz/run}

cmake --preset fuzz -G Ninja >/dev/null
cmake --build build/fuzz -j"$(nproc)" >/dev/null
# bit2_header compares sizes with files the release CLI's make-model writes.
[ -d build/release ] || cmake --preset release -G Ninja >/dev/null
cmake --build build/release --target bitmamba >/dev/null

run_bit2_header() {
  local log=$out/bit2_header.log
  mkdir -p "$out"
  if nice node tests/fuzz/bit2_header_fuzz.mjs --bitmamba build/release/cli/bitmamba --workdir "$out/bit2_header" \
      --seconds "$seconds" --seed "$RANDOM" >"$log" 2>&1; then
    echo "fuzz bit2_header: ok, $(grep -aEo '[0-9]+ random inputs, seed [0-9]+' "$log")"
  else
    echo "fuzz bit2_header: FAILED (log $log)"
    tail -40 "$log"
    return 1
  fi
}

run_one() {
  [ "$1" = bit2_header ] && { run_bit2_header; return; }
  local t=$1 work=$out/corpus/$1 findings=$out/findings/$1 log=$out/$1.log
  mkdir -p "$work" "$findings"
  # Model files need room to grow past the seeds; the rest stay small.
  local max_len=4096
  [ "$t" = model_file ] && max_len=16384
  if nice build/fuzz/tests/fuzz/fuzz_"$t" "$work" "tests/fuzz/corpus/$t" -max_total_time="$seconds" \
      -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$findings/" >"$log" 2>&1; then
    echo "fuzz $t: ok, $(grep -aEo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -aEo '[0-9]+$') runs," \
      "$(grep -aE '^#[0-9]+' "$log" | tail -1 | grep -aEo 'cov: [0-9]+ ft: [0-9]+')"
  else
    echo "fuzz $t: FAILED (log $log, input in $findings/)"
    tail -40 "$log"
    return 1
  fi
}

status=0
pids=()
for t in $targets; do
  run_one "$t" &
  pids+=($!)
  if ((${#pids[@]} >= jobs)); then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
