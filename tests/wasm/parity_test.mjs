// End-to-end parity of the wasm build with the native CLI, through
// scripts/bitmamba-node:
//   - `logits` (one token at a time: the GEMV path) is byte-identical to the
//     native CLI's, for 1 and 2 threads;
//   - `run` (a prompt longer than one prefill chunk: the GEMM path, then 256
//     sampled tokens) gives the native CLI's tokens and text.
// for synthetic models of several shapes, the tiny and 255m presets included,
// compact files (half or int8 embedding) made from some of them, and for
// each kernel table of the build (relaxed has two; either may be the one a
// JS engine picks).
//
//   node parity_test.mjs make-models --bitmamba CLI --models DIR
//   node parity_test.mjs check --bitmamba CLI --runner RUNNER --variant V --models DIR --workdir DIR
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// name -> make-model arguments. Shapes: the two presets; columns that are not
// a multiple of 128 (padded rows, repacked into a copy) with head_dim 48; an
// odd head count (head_dim 80); and 3-block rows (a partial int16 flush).
const MODELS = {
  tiny: ['--preset', 'tiny', '--seed', '3'],
  '255m': ['--preset', '255m', '--seed', '4'],
  'v700-d72-L3-h3': ['--vocab', '700', '--d-model', '72', '--layers', '3', '--heads', '3', '--seed', '5'],
  'v3000-d200-L2-h5': ['--vocab', '3000', '--d-model', '200', '--layers', '2', '--heads', '5', '--seed', '6'],
  'v50257-d384-L3-h12': ['--vocab', '50257', '--d-model', '384', '--layers', '3', '--heads', '12', '--seed', '7'],
};
// name -> [model above, embedding form]: compact files (`bitmamba convert`).
// Only the embedding lookup differs, so they get the logits check and one
// run setting.
const COMPACT = {
  'tiny.q8': ['tiny', 'q8'],
  'v700-d72-L3-h3.f16': ['v700-d72-L3-h3', 'f16'],
};
const RUN_TOKENS = 256;
const TABLES = { simd128: ['simd128'], relaxed: ['relaxed', 'relaxed-dot-add'] };

function parseArgs(argv) {
  const o = { command: argv[0] };
  for (let i = 1; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
  return o;
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, timeout: 600000 });
  if (r.error || r.status !== 0) {
    throw new Error(`${what}: ${[cmd, ...args].join(' ')}\n  exit ${r.status ?? r.error}: ${(r.stderr || '').trim()}`);
  }
  return r.stdout;
}

function vocabOf(model) {
  const fd = fs.openSync(model, 'r');
  const head = Buffer.alloc(8);
  fs.readSync(fd, head, 0, 8, 0);
  fs.closeSync(fd);
  return head.readInt32LE(4);
}

// Both ends of the vocabulary, a repeat, and a spread.
function fixedTokens(vocab, n) {
  const ids = [0, vocab - 1];
  for (let i = 0; ids.length < n; ++i) ids.push((i * 7919 + 13) % vocab);
  ids.push(ids[2]);
  return ids;
}

function makeModels(o) {
  fs.mkdirSync(o.models, { recursive: true });
  for (const [name, args] of Object.entries(MODELS)) {
    const file = path.join(o.models, `${name}.bin`);
    if (!fs.existsSync(file)) run(o.bitmamba, ['make-model', ...args, '--out', file], 'make-model');
  }
  for (const [name, [from, form]] of Object.entries(COMPACT)) {
    const file = path.join(o.models, `${name}.bin`);
    if (!fs.existsSync(file)) {
      run(o.bitmamba, ['convert', path.join(o.models, `${from}.bin`), file, '--embed', form], 'convert');
    }
  }
  console.log(`models in ${o.models}`);
  return 0;
}

function check(o) {
  fs.mkdirSync(o.workdir, { recursive: true });
  const wasm = (args) => [o.runner, ['--variant', o.variant, ...args]];
  const tables = TABLES[o.variant];
  if (!tables) throw new Error(`unknown variant ${o.variant}`);
  const configs = tables.flatMap((t) => [[t, '1'], [t, '2']]);  // [isa, threads]
  let passed = 0;
  let failed = 0;
  const report = (ok, label, detail = '') => {
    console.log(`${ok ? 'PASS' : 'FAIL'} ${label}${detail ? ': ' + detail : ''}`);
    if (ok) ++passed;
    else ++failed;
  };
  const attempt = (label, fn) => {
    try {
      fn();
    } catch (e) {
      report(false, label, e.message);
    }
  };

  for (const name of [...Object.keys(MODELS), ...Object.keys(COMPACT)]) {
    const model = path.join(o.models, `${name}.bin`);
    const vocab = vocabOf(model);

    const tokens = fixedTokens(vocab, name === '255m' ? 6 : 16).join(' ');
    const nativeOut = path.join(o.workdir, `${name}.native.f32`);
    attempt(`${name} logits`, () => {
      run(o.bitmamba, ['logits', model, '--tokens', tokens, '--out', nativeOut], 'native logits');
      const want = fs.readFileSync(nativeOut);
      for (const [isa, threads] of configs) {
        const out = path.join(o.workdir, `${name}.${isa}.t${threads}.f32`);
        const [cmd, args] = wasm(['logits', model, '--tokens', tokens, '--out', out, '--threads', threads, '--isa', isa]);
        run(cmd, args, 'wasm logits');
        const got = fs.readFileSync(out);
        const same = got.equals(want);
        let where = '';
        if (!same) {
          const n = Math.min(got.length, want.length);
          let i = 0;
          while (i < n && got[i] === want[i]) ++i;
          where = `${got.length} vs ${want.length} bytes, first difference at byte ${i} (position ${Math.floor(i / 4 / vocab)})`;
        }
        report(same, `${name} logits, ${isa}, ${threads} thread(s), byte-identical to native`, where);
      }
    });

    // 70 prompt tokens: a full prefill chunk (64) and a ragged one.
    const prompt = fixedTokens(vocab, 69).join(' ');
    const settings = [['--seed', '11'], ['--seed', '12', '--temp', '1.2', '--top-k', '0', '--top-p', '0.95', '--min-p', '0']];
    settings.push(['--seed', '14', '--temp', '0', '--repeat-penalty', '1']);  // greedy: the wasm argmax over every block
    if (name === 'tiny') settings.push(['--seed', '13', '--temp', '0', '--repeat-penalty', '1.3']);
    if (name in COMPACT) settings.length = 1;
    for (const s of settings) {
      const label = `${name} run ${s.join(' ')}`;
      attempt(label, () => {
        const args = ['run', model, '--tokens', prompt, '--max-tokens', String(RUN_TOKENS), '--json', ...s];
        const want = JSON.parse(run(o.bitmamba, args, 'native run')).tokens;
        for (const [isa, threads] of configs) {
          const [cmd, wargs] = wasm([...args, '--threads', threads, '--isa', isa]);
          const got = JSON.parse(run(cmd, wargs, 'wasm run')).tokens;
          const k = got.findIndex((t, i) => t !== want[i]);
          const same = got.length === want.length && k < 0;
          report(same, `${label}, ${isa}, ${threads} thread(s): ${got.length} tokens as native`,
            same ? '' : `lengths ${got.length} vs ${want.length}, first difference at ${k}`);
        }
      });
    }
  }

  // Text in, text out: the tokenizer and the streamed UTF-8 pieces.
  const tiny = path.join(o.models, 'tiny.bin');
  attempt('tiny run --prompt', () => {
    const args = ['run', tiny, '--prompt', 'The quick brown fox jumps over the lazy dog. Ünïcödé ✓ 𝔘', '--max-tokens', '64',
      '--seed', '21'];
    const want = run(o.bitmamba, args, 'native run');
    const got = run(...wasm(args), 'wasm run');
    report(got === want, `tiny run --prompt, ${o.variant}: the same text as native`);
    const wantJson = JSON.parse(run(o.bitmamba, [...args, '--json'], 'native run --json'));
    const gotJson = JSON.parse(run(...wasm([...args, '--json']), 'wasm run --json'));
    report(gotJson.text === wantJson.text && gotJson.tokens.join() === wantJson.tokens.join(),
      `tiny run --prompt --json, ${o.variant}: the same tokens and text as native`);
  });
  attempt('tokenize', () => {
    const text = 'Hello world, 1234 naïve café — emoji 😀 and tabs\tand newlines\n';
    const want = run(o.bitmamba, ['tokenize', text], 'native tokenize');
    const got = run(...wasm(['tokenize', text]), 'wasm tokenize');
    report(got === want, `tokenize, ${o.variant}: the same ids as native`, got === want ? '' : `${got} vs ${want}`);
    const ids = want.trim();
    report(run(...wasm(['detokenize', ids]), 'wasm detokenize') === run(o.bitmamba, ['detokenize', ids], 'native'),
      `detokenize, ${o.variant}: the same text as native`);
  });

  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

const o = parseArgs(process.argv.slice(2));
process.exit(o.command === 'make-models' ? makeModels(o) : check(o));
