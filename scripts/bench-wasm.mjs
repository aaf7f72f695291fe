#!/usr/bin/env node
// Decode speed of the wasm build under Node against the native CLI, in the
// same run: `bench` of build/release/cli/bitmamba and of scripts/bitmamba-node
// (both variants), at each thread count, on the 255M preset by default.
// Rounds interleave the configurations, and each ratio is the median of the
// per-round ratios, so load from other processes hits both sides alike.
//
//   scripts/bench-wasm.mjs [--model FILE] [--threads 1,2] [--rounds 3]
//                          [--prompt-tokens 128] [--gen-tokens 128] [--bitmamba CLI]
//                          [--native-isa avx2]
//
// The native side runs the AVX2 table by default, which the wasm targets
// are set against (relaxed >= 0.55x, simd128 >= 0.3x); --native-isa best
// lets the CLI pick (AVX-512 where the CPU has it).
// Without --model it makes build/bench/bitmamba-255m.bin (make-model --preset
// 255m --seed 1) once. Also reports the wasm memory against the file size.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const opts = {
  model: null, threads: '1,2', rounds: '3', 'prompt-tokens': '128', 'gen-tokens': '128',
  bitmamba: path.join(ROOT, 'build', 'release', 'cli', 'bitmamba'),
  'native-isa': 'avx2',
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const name = argv[i].replace(/^--/, '');
  if (!(name in opts) || argv[i + 1] === undefined) {
    console.error('usage: scripts/bench-wasm.mjs [--model FILE] [--threads 1,2] [--rounds 3] ' +
      '[--prompt-tokens N] [--gen-tokens N] [--bitmamba CLI] [--native-isa avx2|best|...]');
    process.exit(2);
  }
  opts[name] = argv[i + 1];
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    console.error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
    process.exit(1);
  }
  return r.stdout;
}

if (!fs.existsSync(opts.bitmamba)) {
  console.error(`${opts.bitmamba} is missing: build the native CLI (scripts/build.sh)`);
  process.exit(1);
}
let model = opts.model;
if (!model) {
  model = path.join(ROOT, 'build', 'bench', 'bitmamba-255m.bin');
  if (!fs.existsSync(model)) {
    fs.mkdirSync(path.dirname(model), { recursive: true });
    run(opts.bitmamba, ['make-model', '--preset', '255m', '--seed', '1', '--out', model]);
  }
}

const benchArgs = ['bench', model, '--prompt-tokens', opts['prompt-tokens'], '--gen-tokens', opts['gen-tokens'],
  '--runs', '1', '--json'];
const runner = path.join(ROOT, 'scripts', 'bitmamba-node');
const configs = [];
for (const threads of opts.threads.split(',')) {
  const isa = opts['native-isa'] === 'best' ? [] : ['--isa', opts['native-isa']];
  configs.push({ name: 'native', threads, cmd: opts.bitmamba, args: [...benchArgs, '--threads', threads, ...isa] });
  for (const variant of ['relaxed', 'simd128']) {
    configs.push({ name: variant, threads, cmd: runner, args: ['--variant', variant, ...benchArgs, '--threads', threads] });
  }
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const results = new Map(configs.map((c) => [c, []]));
for (let round = 1; round <= Number(opts.rounds); ++round) {
  for (const c of configs) {
    const r = JSON.parse(run(c.cmd, c.args));
    results.get(c).push(r);
    console.error(`round ${round}: ${c.name.padEnd(7)} ${c.threads} thread(s): decode ${r.decode_tok_s} tok/s, ` +
      `prefill ${r.prefill_tok_s} tok/s (${r.isa})`);
  }
}

const file = results.get(configs[0])[0].file_mib;
console.log(`\nmodel ${model} (${file} MiB), prompt ${opts['prompt-tokens']}, decode ${opts['gen-tokens']} tokens, ` +
  `medians of ${opts.rounds} interleaved rounds`);
console.log('threads  native                 wasm relaxed                       wasm simd128');
for (const threads of opts.threads.split(',')) {
  const of = (name) => results.get(configs.find((c) => c.name === name && c.threads === threads));
  const native = of('native');
  const cells = ['relaxed', 'simd128'].map((name) => {
    const rs = of(name);
    const ratio = median(rs.map((r, i) => r.decode_tok_s / native[i].decode_tok_s));
    return `${median(rs.map((r) => r.decode_tok_s)).toFixed(1).padStart(6)} tok/s (${ratio.toFixed(2)}x native)`;
  });
  console.log(`${threads.padEnd(8)} ${median(native.map((r) => r.decode_tok_s)).toFixed(1).padStart(6)} tok/s ` +
    `(${native[0].isa})    ${cells[0].padEnd(34)} ${cells[1]}`);
}
const wasmMib = Math.max(...configs.filter((c) => c.name !== 'native').flatMap((c) => results.get(c).map((r) => r.wasm_memory_mib)));
console.log(`peak wasm memory ${wasmMib.toFixed(1)} MiB = file + ${(wasmMib - file).toFixed(1)} MiB`);
