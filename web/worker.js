// The module worker that owns the wasm engine, one model per worker.
//
// Protocol (one for every operation; bitmamba.js is the other end):
//   page -> worker  {id, op, args}            a request
//                   {op: 'abort', target: id} stop request `id`
//   worker -> page  {type: 'ready', lifeLock}  once, when the module has started;
//                                             lifeLock: a Web Lock held until it dies
//                   {id, type: 'event', event, data}   progress, tokens
//                   {id, type: 'return', value}        success (buffers transferred)
//                   {id, type: 'throw', error}         {name, code, message, details}
// generate sends its tokens as {event: 'tokens', data: [{token, text, t}…]}
// batches. Where shared memory can be posted it also gets a shared stop
// flag, and the whole run is one engine call that reads the flag before
// each token. Elsewhere it runs one token per engine call and yields to the
// event loop in between, so the abort message is seen before the next token.

import { BitMambaError, errorToMessage, asBitMambaError } from './errors.js';
import { loadFromUrl, loadFromBlob, loadFromArrayBuffer } from './loader.js';
import { compileSha256 } from './sha256-wasm.js';

const END_OF_TEXT = 50256;
const GREEDY_BELOW = 0.05;
// SplitMix64's state advances by this constant per draw (core/rng.h), and the
// sampler draws exactly once per non-greedy token (docs/sampling.md). A call
// that starts at seed + n * GOLDEN continues the stream of a single call
// after n tokens, so one-token calls give the CLI's tokens.
const GOLDEN = 0x9E3779B97F4A7C15n;
const MASK64 = (1n << 64n) - 1n;

let wasmModule = null;   // the wasm-engine.js module
let engine = null;
let model = null;
let session = null;
let loadInfo = null;
const controllers = new Map();  // request id -> AbortController
let queue = Promise.resolve();  // session operations run one at a time

// Runs `fn` after every operation queued before it (they share one session).
function exclusive(fn) {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

const yieldChannel = new MessageChannel();
let yieldResolve = null;
yieldChannel.port1.onmessage = () => yieldResolve();
// A macrotask: pending messages (an abort) are handled before it resolves.
const yieldToEvents = () => new Promise((resolve) => { yieldResolve = resolve; yieldChannel.port2.postMessage(0); });

function post(message, transfer = []) {
  self.postMessage(message, transfer);
}

function requireModel() {
  if (!model) throw new BitMambaError('disposed', 'No model is loaded in this worker.');
}

// Several threads need a SharedArrayBuffer that can be made and posted to
// the engine's pthread workers, and Atomics.wait in a worker (this is one).
// Each is tried: a browser can be cross-origin isolated and still lack the
// SharedArrayBuffer global (WebKitGTK), so isolation alone proves nothing;
// it only explains a failure.
function threadSupport() {
  const why = (lack) => (self.crossOriginIsolated
    ? `${lack}, so one thread`
    : `${lack}: the page is not cross-origin isolated (no COOP/COEP headers), so one thread`);
  if (typeof SharedArrayBuffer !== 'function') return { ok: false, reason: why('this browser has no SharedArrayBuffer') };
  try {
    const cells = new Int32Array(new SharedArrayBuffer(8));
    Atomics.store(cells, 0, 1);
    if (Atomics.wait(cells, 0, 0, 0) !== 'not-equal') throw new Error('Atomics.wait misbehaves');
    new MessageChannel().port1.postMessage(cells.buffer);  // throws where shared memory cannot be posted
    new MessageChannel().port1.postMessage(new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }));
    return { ok: true, reason: 'shared memory can be posted and Atomics.wait works in workers' };
  } catch (e) {
    return { ok: false, reason: why(`shared memory is not usable (${e.message})`) };
  }
}
// Probed once, before a load may define the SharedArrayBuffer stand-in below.
const THREAD_SUPPORT = threadSupport();

// Relaxed SIMD when a module using it validates (wasm-engine.js probes it).
function chooseVariant(requested) {
  if (requested && requested !== 'auto') return { variant: requested, reason: 'chosen by the variant option' };
  const variant = wasmModule.detectVariant();
  if (variant === 'relaxed') return { variant, reason: 'relaxed SIMD validates' };
  if (variant === 'simd128') return { variant, reason: 'this browser has no relaxed SIMD, so the simd128 build' };
  return { variant: null, reason: 'no WebAssembly SIMD' };
}

function defaultThreads() {
  // The kernels are memory-bound: past a few threads more cores add little.
  return Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 8));
}

function heapBytes() {
  return engine ? engine.heapBytes() : 0;
}

// Starts the engine module and a wasm engine for `threads`, while the model
// is looked up and requested; the loaders wait for it only to allocate the
// buffer. Resolves to {engine, variant, variantReason, engineMs}.
async function startEngine(options, threads, t0) {
  try {
    wasmModule = await import('./wasm-engine.js');
  } catch (e) {
    throw new BitMambaError('unsupported_browser', `Could not start the engine module: ${e.message}`);
  }
  const { variant, reason: variantReason } = chooseVariant(options.variant);
  if (!variant) {
    throw new BitMambaError('unsupported_browser',
      'This browser lacks WebAssembly SIMD (128-bit), which BitMamba needs. Use a current Chrome, Edge, Firefox or Safari.');
  }
  const wasmBase = wasmBaseOf(options);
  if (typeof SharedArrayBuffer === 'undefined') {
    // Emscripten's pthread glue names SharedArrayBuffer even when it
    // starts no thread. Where the constructor is not a global (outside
    // isolation, or in WebKitGTK even inside it), one-thread shared wasm
    // memory still works: its buffer's constructor stands in.
    self.SharedArrayBuffer = new WebAssembly.Memory({ initial: 0, maximum: 0, shared: true }).buffer.constructor;
  }
  try {
    const started = await wasmModule.loadWasmEngine({ variant, wasmBase, threads });
    return { engine: started, variant, variantReason, engineMs: performance.now() - t0 };
  } catch (e) {
    throw await engineStartError(e, variant, wasmBase);
  }
}

// Where the engine's files (and the SHA-256 module) are.
function wasmBaseOf(options) {
  return options.wasmBase ?? new URL('./dist/', import.meta.url).href;
}

// Missing engine files are a deployment problem, not the browser's.
async function engineStartError(e, variant, wasmBase) {
  const files = new URL(`bitmamba-${variant}.wasm`, wasmBase).href;
  const found = await fetch(files, { method: 'HEAD' }).then((r) => r.status, () => null);
  if (found !== null && found >= 400) {
    return new BitMambaError('http_status',
      `The engine files are missing: ${files} answered ${found}. The site needs the wasm build in dist/ (see docs/browser.md).`,
      { status: found });
  }
  const err = asBitMambaError(e);
  if (err.code === 'internal') {
    return new BitMambaError('unsupported_browser', `Could not start the WebAssembly engine (${variant}): ${err.message}`);
  }
  return err;
}

// The model's bytes into the engine's heap, from the URL (or the cache), a Blob or an ArrayBuffer.
function readSource(engineReady, source, options, { signal, onProgress, hashModule }, skipCache) {
  if (source.url !== undefined) {
    return loadFromUrl(engineReady, source.url, { cache: options.cache !== false && !skipCache, retries: options.retries, signal, onProgress, hashModule });
  }
  if (source.blob !== undefined) return loadFromBlob(engineReady, source.blob, { signal, onProgress });
  if (source.buffer !== undefined) return loadFromArrayBuffer(engineReady, source.buffer, { signal, onProgress });
  throw new BitMambaError('invalid_argument', 'BitMamba.load needs a URL, a File/Blob or an ArrayBuffer.');
}

// The engine parses the buffer; on success the model owns it, on error it is still ours to free.
async function parseModel(loaded, options, threads, onProgress) {
  onProgress({ loaded: loaded.bytes, total: loaded.bytes, phase: 'parse' });
  try {
    model = engine.loadModel(loaded.buf, { threads, isa: options.kernels });
  } catch (e) {
    engine.freeBuffer(loaded.buf);
    await loaded.discard();
    throw asBitMambaError(e);
  }
}

async function load({ source, options }, { signal, emit }) {
  const t0 = performance.now();
  const onProgress = (p) => emit('progress', p);
  onProgress({ loaded: 0, total: null, phase: 'engine' });
  // Each thread is a pthread worker started with the engine: keep the count sane.
  const requested = Math.max(1, Math.min(64, Math.floor(Number(options.threads ?? defaultThreads())) || 1));
  const threads = THREAD_SUPPORT.ok ? requested : 1;
  const started = startEngine(options, threads, t0);
  const engineReady = started.then((s) => s.engine);
  engineReady.catch(() => {});  // reported through the loaders or the await below

  // A download is hashed (for the cache key and the published hash): the
  // hasher compiles while the engine starts.
  const hashModule = source.url !== undefined ? compileSha256(wasmBaseOf(options)) : null;
  const t1 = performance.now();
  let loaded = await readSource(engineReady, source, options, { signal, onProgress, hashModule }, false);
  const { variant, variantReason, engineMs } = await started;
  engine = await engineReady;
  const readMs = performance.now() - t1;

  let t2 = performance.now();
  try {
    await parseModel(loaded, options, threads, onProgress);
  } catch (err) {
    if (loaded.source !== 'cache' || err.code !== 'corrupt_model') throw err;
    // A cached copy the engine refuses (damaged on disk): fetch it again.
    loaded = await readSource(engineReady, source, options, { signal, onProgress, hashModule }, true);
    t2 = performance.now();
    await parseModel(loaded, options, threads, onProgress);
  }
  const parseMs = performance.now() - t2;
  await loaded.commit();
  session = model.newSession();
  // engineMs overlaps readMs: the engine starts during the lookup and the request.
  const timings = { engineMs, readMs, parseMs, totalMs: performance.now() - t0 };
  loadInfo = describeLoad(loaded, { variant, variantReason, threads, requested, timings });
  onProgress({ loaded: loaded.bytes, total: loaded.bytes, phase: 'ready' });
  return { value: loadInfo };
}

// model.info as the page sees it.
function describeLoad(loaded, { variant, variantReason, threads, requested, timings }) {
  const info = model.info;
  return {
    vocabSize: info.vocabSize, dModel: info.dModel, nLayers: info.nLayers, nHeads: info.nHeads,
    dInner: info.dInner, headDim: info.headDim, fileBytes: info.fileBytes,
    isa: info.isa, variant: engine.variant ?? variant, variantReason, threads: info.threads ?? threads,
    threadsRequested: requested, threadsReason: THREAD_SUPPORT.reason,
    crossOriginIsolated: self.crossOriginIsolated === true,
    source: loaded.source, url: loaded.url, sha256: loaded.sha256, cache: { ...loaded.cache },
    download: loaded.download ?? null,
    published: loaded.published ?? null,
    timings,
    heapBytes: heapBytes(),
  };
}

function tokenize({ text }) {
  requireModel();
  const ids = Int32Array.from(engine.tokenize(text));
  return { value: ids, transfer: [ids.buffer] };
}

function detokenize({ tokens }) {
  requireModel();
  return { value: engine.detokenize(Int32Array.from(tokens)) };
}

// The last position's logits, from a scratch session: the main one is untouched.
function logits({ tokens }) {
  requireModel();
  const scratch = model.newSession();
  try {
    scratch.feed(Int32Array.from(tokens));
    const row = scratch.logits();
    return { value: row, transfer: [row.buffer] };
  } finally {
    scratch.dispose();
  }
}

// Scoring runs on a scratch session: the generation context is untouched.
function withScratch(fn) {
  requireModel();
  const scratch = model.newSession();
  try {
    return fn(scratch);
  } finally {
    scratch.dispose();
  }
}

function score({ context, continuations }) {
  return withScratch((scratch) => {
    const logliks = scratch.score(context, continuations);
    return { value: logliks, transfer: [logliks.buffer] };
  });
}

// Progress events as the pass goes (a scoring pass runs to its end: an abort
// message is read only after it).
function perplexity({ text, window }, { emit }) {
  return withScratch((scratch) => ({
    value: scratch.perplexity(text, { window, onProgress: (done, total) => emit('progress', { done, total }) }),
  }));
}

function snapshot() {
  requireModel();
  const bytes = session.snapshot();
  return { value: bytes, transfer: [bytes.buffer] };
}

function restore({ bytes }) {
  requireModel();
  session.restore(new Uint8Array(bytes));
  return { value: undefined };
}

function reset() {
  requireModel();
  session.reset();
  return { value: undefined };
}

function memory() {
  return { value: { heapBytes: heapBytes(), modelBytes: loadInfo ? loadInfo.fileBytes : 0 } };
}

function dispose() {
  for (const c of controllers.values()) c.abort();
  return exclusive(() => {
    if (session) session.dispose();
    if (model) model.dispose();
    session = null;
    model = null;
    return { value: undefined };
  });
}

// The operations by name. Those that use the session run one at a time.
const ops = {
  load,
  generate: (args, ctx) => exclusive(() => generate(args, ctx)),
  tokenize,
  detokenize,
  logits: (args) => exclusive(() => logits(args)),
  score: (args) => exclusive(() => score(args)),
  perplexity: (args, ctx) => exclusive(() => perplexity(args, ctx)),
  snapshot: () => exclusive(snapshot),
  restore: (args) => exclusive(() => restore(args)),
  reset: () => exclusive(reset),
  memory,
  dispose,
};

function samplingParams(o) {
  const num = (v, d) => (v === undefined || v === null ? d : Number(v));
  return {
    temperature: num(o.temperature, 0.8),
    repetitionPenalty: num(o.repetitionPenalty, 1.15),
    minP: num(o.minP, 0.05),
    topP: num(o.topP, 0.9),
    topK: Math.trunc(num(o.topK, 40)),
    ...(o.logprobs === undefined || o.logprobs === null ? {} : { logprobs: Number(o.logprobs) }),
  };
}

function parseSeed(seed) {
  if (seed === undefined || seed === null || seed === '') {
    return BigInt(crypto.getRandomValues(new Uint32Array(1))[0]);
  }
  try {
    const value = BigInt(seed);
    if (value < 0n || value > MASK64) throw new RangeError();
    return value;
  } catch {
    throw new BitMambaError('invalid_argument', `seed = ${seed} must be an integer in [0, 2^64).`);
  }
}

// Holds back text until a token completes its UTF-8 character: the engine's
// detokenize() turns an unfinished sequence into U+FFFD.
class TextStream {
  constructor() { this.pending = []; }
  push(token) {
    if (token === END_OF_TEXT) return this.flush();
    this.pending.push(token);
    const text = engine.detokenize(Int32Array.from(this.pending));
    if (text.endsWith('\uFFFD') && this.pending.length < 4) return '';
    this.pending = [];
    return text;
  }
  flush() {
    if (this.pending.length === 0) return '';
    const text = engine.detokenize(Int32Array.from(this.pending));
    this.pending = [];
    return text;
  }
}

// Stop strings, as the CLI's --stop (core/stop_strings.h): the run ends on
// the token whose text completes one; only generated text counts.
const MAX_STOP_STRINGS = 16;
const MAX_STOP_BYTES = 256;

class StopStrings {
  constructor(stops) {
    if (stops === undefined || stops === null) stops = [];
    if (typeof stops === 'string') stops = [stops];
    if (!Array.isArray(stops) || stops.length > MAX_STOP_STRINGS) {
      throw new BitMambaError('invalid_argument', `stop must be a string or an array of at most ${MAX_STOP_STRINGS} strings.`);
    }
    for (const s of stops) {
      if (typeof s !== 'string' || s.length === 0) throw new BitMambaError('invalid_argument', 'A stop string is empty or not a string.');
      if (new TextEncoder().encode(s).length > MAX_STOP_BYTES) {
        throw new BitMambaError('invalid_argument', `A stop string is longer than ${MAX_STOP_BYTES} bytes.`);
      }
    }
    this.stops = stops;
    this.keep = Math.max(0, ...stops.map((s) => s.length - 1));
    this.tail = '';
  }

  /** The index of a stop string the text now contains, or -1. */
  push(piece) {
    if (this.stops.length === 0 || piece === '') return -1;
    // A match not ending in `piece` would have been found before.
    const window = this.tail + piece;
    const found = this.stops.findIndex((s) => window.includes(s));
    this.tail = window.slice(Math.max(0, window.length - this.keep));
    return found;
  }
}

// The prompt as token ids; a fresh generation resets the session first.
function promptTokens(input, options) {
  let prompt;
  if (typeof input === 'string') prompt = Int32Array.from(engine.tokenize(input));
  else if (input && input.tokens) prompt = Int32Array.from(input.tokens);
  else throw new BitMambaError('invalid_argument', 'generate() takes a string or {tokens}.');
  if (!options.continue) {
    session.reset();
    // Like GPT-2: an empty prompt starts from <|endoftext|>.
    if (prompt.length === 0) prompt = Int32Array.of(END_OF_TEXT);
  }
  return prompt;
}

// Tokens reach the page in batches: the first at once (time to first
// token), then whatever accumulated, at most every BATCH_MS, and the rest
// when the run ends. A message per token costs the page about a tenth of
// its decode rate.
const BATCH_MS = 8;

function tokenBatcher(emit) {
  const text = new TextStream();
  let batch = [];
  let sentAt = -Infinity;
  const send = () => {
    if (batch.length > 0) emit('tokens', batch);
    batch = [];
    sentAt = performance.now();
  };
  return {
    /** Queues the token; returns its text piece. */
    add(token, logprobs) {
      const piece = text.push(token);
      batch.push({ token, text: piece, ...logprobs, t: performance.timeOrigin + performance.now() });
      if (performance.now() - sentAt >= BATCH_MS) send();
      return piece;
    },
    end() {
      const rest = text.flush();
      if (rest) batch.push({ token: null, text: rest, t: performance.timeOrigin + performance.now() });
      send();
    },
  };
}

// Where Stop is a shared flag, the whole run is one engine call: the token
// callback reads the flag before the engine computes the next token.
function decodeInOneCall({ prompt, params, maxTokens, seed, greedy }, stopped, out, run) {
  const stats = session.generate(prompt, { ...params, seed }, maxTokens,
    (token, piece, logprobs) => out.add(token, logprobs) && !stopped());
  run.generated = stats.generatedTokens;
  run.draws = greedy ? 0n : BigInt(run.generated);
  run.prefillMs = stats.prefillMs;
  run.decodeMs = stats.decodeMs;
  if (run.stopString !== null) return;
  if (stats.stoppedAtEos) run.stopReason = 'eos';
  else if (run.generated < maxTokens && stopped()) run.stopReason = 'stopped';
}

// Otherwise Stop is a message, seen only between engine calls: one token per
// call, each seeded where the previous call left the generator, yielding to
// the event loop in between.
async function decodeTokenByToken({ prompt, params, maxTokens, seed, greedy }, stopped, out, run) {
  const none = new Int32Array(0);
  while (run.generated < maxTokens) {
    if (stopped()) { run.stopReason = 'stopped'; break; }
    let token = -1;
    let logprobs;
    const callSeed = (seed + run.draws * GOLDEN) & MASK64;
    const stats = session.generate(run.generated === 0 ? prompt : none, { ...params, seed: callSeed }, 1,
      (t, piece, lp) => { token = t; logprobs = lp; return true; });
    if (run.generated === 0) run.prefillMs = stats.prefillMs;
    run.decodeMs += stats.decodeMs;
    if (token < 0) break;
    run.generated += 1;
    if (!greedy) run.draws += 1n;
    if (!out.add(token, logprobs)) break;
    if (token === END_OF_TEXT) { run.stopReason = 'eos'; break; }
    await yieldToEvents();
  }
}

async function decodeTokens(request, { stopped, sharedStop, emit, start }) {
  const run = {
    generated: 0, draws: 0n, prefillMs: 0, decodeMs: 0, firstTokenMs: null, stopReason: 'max_tokens', stopString: null,
  };
  const batcher = tokenBatcher(emit);
  const out = {
    /** Sends the token on (with its logprobs, if asked); false once its text completes a stop string. */
    add(token, logprobs) {
      if (run.firstTokenMs === null) run.firstTokenMs = performance.now() - start;
      const found = request.stops.push(batcher.add(token, logprobs));
      if (found < 0) return true;
      run.stopReason = 'stop';
      run.stopString = request.stops.stops[found];
      return false;
    },
  };
  if (request.maxTokens > 0) {  // else the caller fed the prompt
    if (sharedStop) decodeInOneCall(request, stopped, out, run);
    else await decodeTokenByToken(request, stopped, out, run);
  }
  batcher.end();
  return run;
}

async function generate({ input, options, stopFlag }, { signal, emit }) {
  const stopped = () => signal.aborted || (stopFlag != null && Atomics.load(stopFlag, 0) !== 0);
  requireModel();
  const start = performance.now();
  const params = samplingParams(options);
  const maxTokens = options.maxTokens === undefined ? 200 : Math.trunc(Number(options.maxTokens));
  if (!(maxTokens >= 0)) throw new BitMambaError('invalid_argument', `maxTokens = ${options.maxTokens} must be >= 0.`);
  const seed = parseSeed(options.seed);
  const stops = new StopStrings(options.stop);
  const greedy = params.temperature < GREEDY_BELOW;
  const prompt = promptTokens(input, options);
  let feedMs = 0;
  if (maxTokens === 0) {  // still part of the context, as in one engine call
    const t = performance.now();
    session.feed(prompt);
    feedMs = performance.now() - t;
  }
  const run = await decodeTokens({ prompt, params, maxTokens, seed, greedy, stops },
    { stopped, sharedStop: stopFlag != null, emit, start });
  const prefillMs = maxTokens === 0 ? feedMs : run.prefillMs;
  return {
    value: {
      promptTokens: prompt.length,
      generatedTokens: run.generated,
      prefillMs,
      decodeMs: run.decodeMs,
      prefillTokensPerSecond: prefillMs > 0 ? (prompt.length * 1000) / prefillMs : null,
      decodeTokensPerSecond: run.decodeMs > 0 ? (run.generated * 1000) / run.decodeMs : null,
      timeToFirstTokenMs: run.firstTokenMs,
      totalMs: performance.now() - start,
      stopReason: run.stopReason,
      stopString: run.stopString,
      seed: seed.toString(),
      // The seed that goes on with this run's random stream: generate(…,
      // {continue: true, seed: nextSeed}) gives the tokens one longer run would.
      nextSeed: ((seed + run.draws * GOLDEN) & MASK64).toString(),
      threads: loadInfo.threads,
      heapBytes: heapBytes(),
    },
  };
}

self.onmessage = async (event) => {
  const { id, op, args, target } = event.data;
  if (op === 'abort') {
    const controller = controllers.get(target);
    if (controller) controller.abort();
    return;
  }
  const controller = new AbortController();
  controllers.set(id, controller);
  const emit = (name, data, transfer = []) => post({ id, type: 'event', event: name, data }, transfer);
  try {
    if (!ops[op]) throw new BitMambaError('invalid_argument', `unknown operation ${op}`);
    const { value, transfer = [] } = await ops[op](args || {}, { signal: controller.signal, emit });
    post({ id, type: 'return', value }, transfer);
  } catch (e) {
    let err = asBitMambaError(e);
    if (controller.signal.aborted && err.code !== 'aborted') err = new BitMambaError('aborted', 'Stopped.');
    post({ id, type: 'throw', error: errorToMessage(err) });
  } finally {
    controllers.delete(id);
  }
};

// The worker holds a Web Lock for its whole life: the page (bitmamba.js)
// asks for the same lock and is granted it only when this worker is gone,
// terminated or crashed, which no event tells it otherwise.
const lifeLock = `bitmamba-worker-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
if (self.navigator && navigator.locks) {
  navigator.locks.request(lifeLock, () => {
    post({ type: 'ready', lifeLock });
    return new Promise(() => {});
  }).catch(() => post({ type: 'ready' }));
} else {
  post({ type: 'ready' });
}
