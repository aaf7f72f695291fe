// The wasm engine's JS API (web/wasm-engine.js, docs/wasm-api.md) under Node:
// every bad input becomes a BitMambaError with the documented code, and the
// instance keeps working afterwards (each test ends by checking that the same
// engine still generates the native CLI's tokens).
//
//   node --experimental-wasm-relaxed-simd --no-liftoff engine_test.mjs --bitmamba CLI --workdir DIR
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { loadWasmEngine, detectVariant, BitMambaError } = await import(path.join(ROOT, 'web', 'wasm-engine.js'));

const arg = (name) => process.argv[process.argv.indexOf(`--${name}`) + 1];
const CLI = arg('bitmamba');
const WORKDIR = arg('workdir');
const PROMPT = [464, 3290, 318, 257];
const SEED = 77;

function cli(args) {
  const r = spawnSync(CLI, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${CLI} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function throwsCode(fn, code, what) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof BitMambaError, `${what}: not a BitMambaError: ${e}`);
    assert.equal(e.name, 'BitMambaError');
    assert.equal(e.code, code, `${what}: code ${e.code} (${e.message})`);
    assert.ok(e.message.length > 0);
    return true;
  }, what);
}

let engine;
let tinyBytes;
let smallBytes;
let nativeTokens;

function loadBytes(bytes, options) {
  const buf = engine.allocBuffer(bytes.length);
  engine.heapView(buf).set(bytes);
  return engine.loadModel(buf, options);
}

function generateTokens(model, n = 24, params = { seed: SEED }) {
  const s = model.newSession();
  const tokens = [];
  s.generate(PROMPT, params, n, (t) => { tokens.push(t); });
  s.dispose();
  return tokens;
}

// The instance still works: a fresh model generates the native tokens.
function assertStillWorks() {
  const model = loadBytes(tinyBytes, { threads: 2 });
  try {
    assert.deepEqual(generateTokens(model), nativeTokens);
  } finally {
    model.dispose();
  }
}

before(async () => {
  fs.mkdirSync(WORKDIR, { recursive: true });
  const tiny = path.join(WORKDIR, 'tiny.bin');
  const small = path.join(WORKDIR, 'small.bin');
  cli(['make-model', '--preset', 'tiny', '--seed', '9', '--out', tiny]);
  cli(['make-model', '--vocab', '600', '--d-model', '128', '--layers', '2', '--heads', '4', '--seed', '9', '--out', small]);
  tinyBytes = fs.readFileSync(tiny);
  smallBytes = fs.readFileSync(small);
  nativeTokens = JSON.parse(cli(['run', tiny, '--tokens', PROMPT.join(' '), '--max-tokens', '24', '--seed', String(SEED),
    '--json'])).tokens;
  engine = await loadWasmEngine({ variant: detectVariant(), threads: 2 });
});

after(() => engine && engine.dispose());

test('detectVariant and the model info', () => {
  assert.equal(detectVariant(), 'relaxed', 'run with --experimental-wasm-relaxed-simd');
  const model = loadBytes(tinyBytes, { threads: 2 });
  // The faster of the build's two relaxed tables here, timed at load.
  const { isa, ...shape } = model.info;
  assert.ok(['relaxed', 'relaxed-dot-add'].includes(isa), `isa ${isa}`);
  assert.deepEqual(shape, {
    vocabSize: 50257, dModel: 128, nLayers: 2, nHeads: 4, dInner: 256, headDim: 64, fileBytes: tinyBytes.length,
    threads: 2,
  });
  assert.deepEqual(generateTokens(model), nativeTokens);
  model.dispose();
  for (const forced of ['relaxed', 'relaxed-dot-add']) {
    const m = loadBytes(tinyBytes, { threads: 2, isa: forced });
    assert.equal(m.info.isa, forced);
    assert.deepEqual(generateTokens(m), nativeTokens, forced);
    m.dispose();
  }
});

test('corrupt models are bad_model errors and leave the buffer to the caller', () => {
  const cases = {
    truncated: tinyBytes.subarray(0, tinyBytes.length - 1000),
    'bad magic': Buffer.concat([Buffer.from([0, 0, 0, 0]), tinyBytes.subarray(4)]),
    'trailing garbage': Buffer.concat([tinyBytes, Buffer.from([1, 2, 3])]),
    'header only': tinyBytes.subarray(0, 20),
    'NaN in the embedding': (() => {
      const b = Buffer.from(tinyBytes);
      b.writeFloatLE(NaN, 20 + 12 + 8 * 4);
      return b;
    })(),
  };
  for (const [what, bytes] of Object.entries(cases)) {
    const buf = engine.allocBuffer(bytes.length);
    engine.heapView(buf).set(bytes);
    throwsCode(() => engine.loadModel(buf), 'bad_model', what);
    engine.heapView(buf);  // still the caller's
    engine.freeBuffer(buf);
    engine.freeBuffer(buf);  // twice: nothing happens
  }
  assertStillWorks();
});

test('bad token ids are invalid_argument errors and change nothing', () => {
  const model = loadBytes(tinyBytes, { threads: 2 });
  const s = model.newSession();
  s.feed(PROMPT);
  const before = s.logits();
  for (const ids of [[50257], [-1], [1, 2, 1 << 30], [1.5], ['7'], [NaN], [2 ** 31]]) {
    throwsCode(() => s.feed(ids), 'invalid_argument', `feed(${ids})`);
    throwsCode(() => s.generate(ids, {}, 4), 'invalid_argument', `generate(${ids})`);
  }
  throwsCode(() => s.feed(null), 'invalid_argument', 'feed(null)');
  assert.deepEqual(s.logits(), before);
  const fresh = model.newSession();
  assert.equal(fresh.logits(), null);
  throwsCode(() => fresh.generate([], {}, 4), 'invalid_argument', 'empty prompt, no context');
  model.dispose();
  assertStillWorks();
});

test('bad sampling parameters are invalid_argument errors', () => {
  const model = loadBytes(tinyBytes, { threads: 1 });
  const s = model.newSession();
  const bad = [
    { temperature: NaN }, { temperature: -1 }, { temperature: Infinity }, { repetitionPenalty: NaN },
    { repetitionPenalty: 0.5 }, { minP: NaN }, { minP: 2 }, { topP: 0 }, { topP: NaN }, { topK: -1 }, { topK: 1.5 },
    { topK: NaN }, { seed: -1 }, { seed: 2 ** 64 }, { seed: 1n << 64n }, { seed: 0.5 }, { temperature: '0.8' },
  ];
  for (const params of bad) throwsCode(() => s.generate(PROMPT, params, 4), 'invalid_argument', JSON.stringify(params, (k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
  for (const n of [-1, 1.5, NaN, 2 ** 31]) throwsCode(() => s.generate(PROMPT, {}, n), 'invalid_argument', `maxTokens ${n}`);
  throwsCode(() => s.generate(PROMPT, {}, 4, 'not a function'), 'invalid_argument', 'onToken');
  // Nothing was fed by the failed calls.
  assert.equal(s.logits(), null);
  model.dispose();
  assertStillWorks();
});

test('an exception in onToken stops generation and is rethrown; re-entry is refused', () => {
  const model = loadBytes(tinyBytes, { threads: 2 });
  const s = model.newSession();
  const boom = new Error('boom');
  let calls = 0;
  assert.throws(() => s.generate(PROMPT, { seed: SEED }, 10, () => { if (++calls === 3) throw boom; }), (e) => e === boom);
  assert.equal(calls, 3);
  assert.throws(() => s.generate([], { seed: SEED }, 2, () => { s.feed([1]); }),
    (e) => e instanceof BitMambaError && e.code === 'invalid_argument');
  // The session goes on where it stopped.
  s.generate([], { seed: 5 }, 3);
  model.dispose();
  assertStillWorks();
});

test('snapshot and restore', () => {
  const model = loadBytes(tinyBytes, { threads: 2 });
  const s = model.newSession();
  s.feed(PROMPT);
  const snap = s.snapshot();
  assert.ok(snap instanceof Uint8Array && snap.length > 0);
  const first = [];
  s.generate([], { seed: 3 }, 12, (t) => { first.push(t); });
  s.restore(snap);
  const again = [];
  s.generate([], { seed: 3 }, 12, (t) => { again.push(t); });
  assert.deepEqual(again, first);
  s.restore(snap.buffer.slice(snap.byteOffset, snap.byteOffset + snap.byteLength));  // an ArrayBuffer works too
  throwsCode(() => s.restore(snap.subarray(1)), 'bad_state', 'short snapshot');
  const garbage = new Uint8Array(snap);
  garbage[0] ^= 0xff;
  throwsCode(() => s.restore(garbage), 'bad_state', 'bad magic');
  throwsCode(() => s.restore('nope'), 'invalid_argument', 'not bytes');
  const other = loadBytes(smallBytes, { threads: 1 });
  const so = other.newSession();
  so.feed([1, 2]);
  throwsCode(() => s.restore(so.snapshot()), 'bad_state', 'another model');
  other.dispose();
  s.reset();
  assert.equal(s.logits(), null);
  model.dispose();
  assertStillWorks();
});

test('the tokenizer: text in, text out, bad text refused', () => {
  const text = 'Hello world — naïve café 😀\n';
  const ids = engine.tokenize(text);
  assert.ok(ids instanceof Int32Array);
  assert.deepEqual(Array.from(ids), cli(['tokenize', text]).trim().split(' ').map(Number));
  assert.equal(engine.detokenize(ids), text);
  assert.deepEqual(engine.tokenize(new TextEncoder().encode(text)), ids);
  throwsCode(() => engine.tokenize('\uD800 lone surrogate'), 'bad_text', 'lone surrogate');
  throwsCode(() => engine.tokenize(new Uint8Array([0x61, 0xff, 0x62])), 'bad_text', 'invalid UTF-8');
  throwsCode(() => engine.tokenize(42), 'invalid_argument', 'not text');
  throwsCode(() => engine.detokenize([50257]), 'invalid_argument', 'id past the vocabulary');
  assert.equal(engine.detokenize([]), '');
  // A token that ends inside a character: the piece waits, the tail ends it.
  const model = loadBytes(tinyBytes, { threads: 1 });
  const s = model.newSession();
  const pieces = [];
  const r = s.generate(engine.tokenize('é'), { seed: 1 }, 20, (t, piece) => { pieces.push(piece); });
  const all = [];
  s.reset();
  s.generate(engine.tokenize('é'), { seed: 1 }, 20, (t) => { all.push(t); });
  assert.equal(pieces.join('') + r.tail, engine.detokenize(all));
  model.dispose();
});

test('perplexity, score and logprobs: the native CLI figures; bad input refused', () => {
  const text = 'The quick brown fox jumps over the lazy dog.\n\n = Caf\u00e9 =  \t12.5 %\n';
  const items = [
    { context: 'The capital of France is', choices: [' Paris', ' London'], label: 0 },
    { context: 'Answer: ', choices: ['yes', 'no', 'maybe'], label: 2 },
    { context: '', choices: ['A sentence.', 'Another one.'], label: 1 },
  ];
  const textFile = path.join(WORKDIR, 'text.txt');
  const tasksFile = path.join(WORKDIR, 'tasks.jsonl');
  fs.writeFileSync(textFile, text);
  fs.writeFileSync(tasksFile, items.map((it) => JSON.stringify(it) + '\n').join(''));
  const tiny = path.join(WORKDIR, 'tiny.bin');
  const model = loadBytes(tinyBytes, { threads: 2 });
  const s = model.newSession();
  for (const window of [0, 5]) {
    const want = JSON.parse(cli(['perplexity', tiny, '--text-file', textFile, '--json', '--window', String(window || 1 << 30)]));
    const progress = [];
    const got = s.perplexity(text, { window, onProgress: (done, total) => { progress.push([done, total]); } });
    for (const key of ['tokens', 'nll', 'words', 'bytes']) assert.equal(got[key], want[key], `${key}, window ${window}`);
    assert.ok(Math.abs(got.ppl / want.ppl - 1) < 1e-12 && Math.abs(got.wordPpl / want.word_ppl - 1) < 1e-12);
    assert.deepEqual(progress.at(-1), [want.tokens, want.tokens]);
  }
  const scored = JSON.parse(cli(['score', tiny, '--tasks', tasksFile, '--json']));
  items.forEach((it, i) => assert.deepEqual(Array.from(s.score(it.context, it.choices)), scored.results[i].loglik));

  // Greedy with logprobs: each token is the likeliest, with the log-softmax of the logits it came from.
  const tokens = [];
  const infos = [];
  s.reset();
  s.generate(PROMPT, { temperature: 0, repetitionPenalty: 1, logprobs: 3 }, 6, (t, piece, info) => {
    tokens.push(t);
    infos.push(info);
  });
  const check = model.newSession();
  check.feed(PROMPT);
  infos.forEach((info, i) => {
    assert.equal(info.topLogprobs.length, 3);
    assert.equal(info.topLogprobs[0].token, tokens[i]);
    assert.equal(info.topLogprobs[0].logprob, info.logprob);
    assert.equal(info.topLogprobs[0].text, engine.detokenize([tokens[i]]));
    assert.ok(info.topLogprobs[1].logprob <= info.logprob && info.topLogprobs[2].logprob <= info.topLogprobs[1].logprob);
    const logits = check.logits();
    let max = -Infinity;
    for (const x of logits) max = Math.max(max, x);
    let sum = 0;
    for (const x of logits) sum += Math.exp(x - max);
    assert.ok(Math.abs(info.logprob - (logits[tokens[i]] - max - Math.log(sum))) < 1e-5, `token ${i}`);
    check.feed([tokens[i]]);
  });
  // logprobs do not change what is sampled; without the option there is no third argument.
  const sampled = [];
  s.reset();
  s.generate(PROMPT, { seed: SEED, logprobs: 0 }, 24, (t, piece, info) => {
    sampled.push(t);
    assert.deepEqual(info.topLogprobs, []);
  });
  assert.deepEqual(sampled, nativeTokens);
  s.reset();
  s.generate(PROMPT, { seed: SEED }, 2, (...args) => assert.equal(args.length, 2));

  throwsCode(() => s.generate(PROMPT, { logprobs: 21 }, 1), 'invalid_argument', 'logprobs 21');
  throwsCode(() => s.score('a', []), 'invalid_argument', 'no continuations');
  throwsCode(() => s.score('a', ['b', 7]), 'invalid_argument', 'a continuation that is not a string');
  throwsCode(() => s.score('a\uD800', ['b']), 'bad_text', 'a lone surrogate');
  throwsCode(() => s.perplexity(''), 'invalid_argument', 'an empty text');
  throwsCode(() => s.perplexity('a', { window: -1 }), 'invalid_argument', 'a negative window');
  const small = loadBytes(smallBytes, { threads: 1 });
  throwsCode(() => small.newSession().perplexity('a b'), 'invalid_argument', 'a vocabulary without <|endoftext|>');
  small.dispose();
  check.dispose();
  model.dispose();
  assertStillWorks();
});

test('threads beyond the engine pool are refused; disposal frees them', () => {
  throwsCode(() => loadBytes(tinyBytes, { threads: 3 }), 'invalid_argument', 'threads > engine threads');
  const a = loadBytes(tinyBytes, { threads: 2 });
  const buf = engine.allocBuffer(tinyBytes.length);
  engine.heapView(buf).set(tinyBytes);
  throwsCode(() => engine.loadModel(buf, { threads: 2 }), 'invalid_argument', 'pool in use by another model');
  a.dispose();
  const b = engine.loadModel(buf, { threads: 2 });
  assert.deepEqual(generateTokens(b), nativeTokens);
  throwsCode(() => engine.freeBuffer(buf), 'invalid_argument', 'buffer owned by a model');
  throwsCode(() => engine.heapView(buf), 'invalid_argument', 'view of a model buffer');
  const s = b.newSession();
  b.dispose();
  throwsCode(() => s.feed([1]), 'invalid_argument', 'session of a disposed model');
  throwsCode(() => b.newSession(), 'invalid_argument', 'disposed model');
  throwsCode(() => loadBytes(tinyBytes, { isa: 'avx2' }), 'invalid_argument', 'an ISA wasm lacks');
  throwsCode(() => loadBytes(tinyBytes, { threads: 0 }), 'invalid_argument', 'threads 0');
  assertStillWorks();
});

test('prefault: a pool thread touches a buffer while it is filled, changes no byte, and frees its worker', () => {
  const buf = engine.allocBuffer(tinyBytes.length);
  assert.equal(engine.startPrefault(buf), true, 'the pool has a free worker');
  // Filled in small steps while the thread touches the pages from the end.
  for (let at = 0; at < tinyBytes.length; at += 1000) engine.heapView(buf).set(tinyBytes.subarray(at, at + 1000), at);
  engine.finishPrefault();
  assert.ok(Buffer.from(engine.heapView(buf)).equals(Buffer.from(tinyBytes)), 'the buffer holds the bytes written');
  const model = engine.loadModel(buf, { threads: 2 });  // needs the pool's worker back
  assert.deepEqual(generateTokens(model), nativeTokens);
  // While the model holds the pool there is no thread to prefault with.
  const other = engine.allocBuffer(4096);
  assert.equal(engine.startPrefault(other), false, 'no free worker while a model uses the pool');
  model.dispose();
  assert.equal(engine.startPrefault(other), true);
  engine.freeBuffer(other);  // stops and waits for the thread first
  throwsCode(() => engine.startPrefault(other), 'invalid_argument', 'a freed buffer');
  assertStillWorks();
});

test('buffers: sizes out of range, memory exhausted', () => {
  for (const size of [0, -1, 1.5, 2 ** 32, NaN]) throwsCode(() => engine.allocBuffer(size), 'invalid_argument', `size ${size}`);
  throwsCode(() => engine.allocBuffer(2 ** 32 - 1), 'out_of_memory', '4 GiB');
  throwsCode(() => engine.heapView({ ptr: 12345, size: 10 }), 'invalid_argument', 'a made-up buffer');
  assertStillWorks();
});

test('memory is sized at load: generation does not grow it', async () => {
  const fresh = await loadWasmEngine({ variant: 'simd128', threads: 2 });
  try {
    const buf = fresh.allocBuffer(tinyBytes.length);
    fresh.heapView(buf).set(tinyBytes);
    const model = fresh.loadModel(buf, { threads: 2 });
    const atLoad = fresh.heapBytes();
    const sessions = [model.newSession(), model.newSession()];
    for (const s of sessions) {
      s.generate(Array.from({ length: 100 }, (_, i) => (i * 997) % 50257), { seed: 2 }, 200);
      s.snapshot();
      s.logits();
    }
    fresh.tokenize('some text to encode '.repeat(200));
    assert.equal(fresh.heapBytes(), atLoad);
    const over = (atLoad - tinyBytes.length) / 1048576;
    assert.ok(over <= 48, `wasm memory is file + ${over.toFixed(1)} MiB`);
    model.dispose();
  } finally {
    fresh.dispose();
  }
});
