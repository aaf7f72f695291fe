// The JS BIT2 header reader (web/bit2.js) under fast-check: on any bytes it
// returns a header or throws a BitMambaError (not_a_model, corrupt_model) and
// nothing else; it accepts exactly the headers the engine's parser accepts
// (the limits are read from core/model_file.h, not from bit2.js); and the
// size it announces is the size of the file the native model maker writes.
//
//   node bit2_header_fuzz.mjs --bitmamba CLI --workdir DIR [--runs N | --seconds S] [--seed S]
// --seconds splits S seconds between the three random-input properties
// (scripts/fuzz.sh); --runs (default 20,000) runs each that many times.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { parseBit2Header, BIT2_MAGIC } = await import(path.join(ROOT, 'web', 'bit2.js'));
const { BitMambaError } = await import(path.join(ROOT, 'web', 'errors.js'));

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const RUNS = Number(arg('runs', 20000));
const SECONDS = Number(arg('seconds', 0));
const SEED = Number(arg('seed', 20260));
const params = SECONDS > 0
  ? { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: (SECONDS * 1000) / 3, markInterruptAsFailure: false, seed: SEED }
  : { numRuns: RUNS, seed: SEED };

// fc.assert, counting the runs for the summary printed at the end.
let totalRuns = 0;
function check(property) {
  const details = fc.check(property, params);
  totalRuns += details.numRuns;
  if (details.failed) throw new Error(fc.defaultReportMessage(details));
}
after(() => console.log(`# ${totalRuns} random inputs, seed ${SEED}`));

// The engine's header limits, from its source: `constexpr int32_t kMaxVocab = 1 << 20;`.
const source = fs.readFileSync(path.join(ROOT, 'core', 'model_file.h'), 'utf8');
const limit = (name) => {
  const m = source.match(new RegExp(`${name} = 1 << (\\d+);`));
  assert.ok(m, `${name} not found in core/model_file.h`);
  return 2 ** Number(m[1]);
};
const MAX = { vocab: limit('kMaxVocab'), dModel: limit('kMaxDModel'), layers: limit('kMaxLayers') };
// core/model_file.cpp: n_heads has d_model's limit and must divide d_inner = 2 * d_model.
const engineAccepts = ({ vocab, dModel, layers, heads }) =>
  vocab >= 1 && vocab <= MAX.vocab && dModel >= 1 && dModel <= MAX.dModel && layers >= 1 &&
  layers <= MAX.layers && heads >= 1 && heads <= MAX.dModel && (2 * dModel) % heads === 0;

function header({ vocab, dModel, layers, heads }, tail = new Uint8Array(0)) {
  const bytes = new Uint8Array(20 + tail.length);
  const view = new DataView(bytes.buffer);
  [BIT2_MAGIC, vocab, dModel, layers, heads].forEach((v, i) => view.setInt32(4 * i, v, true));
  bytes.set(tail, 20);
  return bytes;
}

// Returns the header, or the BitMambaError's code; anything else fails.
function read(bytes) {
  try {
    return parseBit2Header(bytes);
  } catch (e) {
    assert.ok(e instanceof BitMambaError, `not a BitMambaError: ${e?.stack ?? e}`);
    assert.ok(e.code === 'not_a_model' || e.code === 'corrupt_model', `code ${e.code}`);
    assert.ok(e.message.length > 0);
    return e.code;
  }
}

// Field values near every limit and divisor, as well as anywhere in int32.
const int32 = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.integer({ min: -4, max: 300 }),
  fc.constantFrom(...Object.values(MAX).flatMap((m) => [m - 1, m, m + 1, 2 * m])),
);
const shape = fc.record({ vocab: int32, dModel: int32, layers: int32, heads: int32 });

test('any bytes: a header or a typed error, never another exception', () => {
  check(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => { read(bytes); }));
});

test('any bytes after the magic number: the same', () => {
  check(fc.property(fc.uint8Array({ minLength: 16, maxLength: 40 }), (rest) => {
    const bytes = new Uint8Array(4 + rest.length);
    new DataView(bytes.buffer).setInt32(0, BIT2_MAGIC, true);
    bytes.set(rest, 4);
    read(bytes);
  }));
});

test('accepts exactly the shapes the engine accepts, with an exact size', () => {
  check(fc.property(shape, fc.uint8Array({ maxLength: 8 }), (s, tail) => {
    const got = read(header(s, tail));
    if (!engineAccepts(s)) {
      assert.equal(got, 'corrupt_model', `accepted ${JSON.stringify(s)}`);
      return;
    }
    assert.equal(typeof got, 'object', `refused ${JSON.stringify(s)}: ${got}`);
    assert.deepEqual([got.vocabSize, got.dModel, got.nLayers, got.nHeads], [s.vocab, s.dModel, s.layers, s.heads]);
    assert.ok(Number.isSafeInteger(got.fileBytes) && got.fileBytes > 20, `fileBytes ${got.fileBytes}`);
  }));
});

test('the announced size is the size of the file the model maker writes', () => {
  const cli = arg('bitmamba');
  const workdir = arg('workdir');
  fs.mkdirSync(workdir, { recursive: true });
  const small = fc.integer({ min: 1, max: 24 }).chain((half) =>
    fc.record({
      vocab: fc.integer({ min: 1, max: 700 }),
      dModel: fc.constant(half),
      layers: fc.integer({ min: 1, max: 3 }),
      heads: fc.constantFrom(...[1, 2, 3, 4, 6, 8].filter((h) => (2 * half) % h === 0)),
    }));
  for (const [i, s] of fc.sample(small, { numRuns: 12, seed: SEED }).entries()) {
    const out = path.join(workdir, `shape${i}.bit2`);
    const r = spawnSync(cli, ['make-model', '--vocab', s.vocab, '--d-model', s.dModel, '--layers', s.layers,
      '--heads', s.heads, '--seed', '1', '--out', out].map(String), { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const bytes = fs.readFileSync(out);
    assert.equal(parseBit2Header(bytes).fileBytes, bytes.length, JSON.stringify(s));
    fs.rmSync(out);
  }
});
