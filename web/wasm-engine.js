// The wasm engine's JavaScript interface (docs/wasm-api.md): an ES module
// over the Emscripten module of wasm/bindings.cpp. The browser's worker and
// the Node tests use this and nothing below it.
//
// The bindings never throw for bad input: they return { code, message, ... }
// with code 'ok' or a core/status.h name, and this file throws the others as
// BitMambaError. Arguments are checked here first, so nothing that reaches
// the wasm side can abort the instance.

export class BitMambaError extends Error {
  /**
   * @param {string} code 'invalid_argument' | 'bad_model' | 'bad_state' | 'bad_text' | 'io' | 'aborted'
   *   | 'out_of_memory' | 'unsupported'
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'BitMambaError';
    this.code = code;
  }
}

const VARIANTS = ['simd128', 'relaxed'];
const MAX_THREADS = 256;
const MAX_LOGPROBS = 20;  // as the OpenAI API

// Tiny modules that validate only where the feature exists: a function
// returning i8x16.splat(0) (SIMD128), and one returning
// i16x8.relaxed_dot_i8x16_i7x16_s of two of those (relaxed SIMD).
function moduleReturningV128(body) {
  const code = [0x00, ...body, 0x0b];  // no locals, body, end
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,  // \0asm, version 1
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,        // type 0: () -> v128
    0x03, 0x02, 0x01, 0x00,                          // function 0 has type 0
    0x0a, code.length + 2, 0x01, code.length, ...code,
  ]);
}
const SPLAT_ZERO = [0x41, 0x00, 0xfd, 0x0f];  // i32.const 0; i8x16.splat
const SIMD128_PROBE = moduleReturningV128(SPLAT_ZERO);
const RELAXED_PROBE = moduleReturningV128([...SPLAT_ZERO, ...SPLAT_ZERO, 0xfd, 0x92, 0x02]);

/** The best variant this JS engine runs: 'relaxed', 'simd128', or null (no SIMD128: unsupported). */
export function detectVariant() {
  if (typeof WebAssembly !== 'object') return null;
  if (WebAssembly.validate(RELAXED_PROBE)) return 'relaxed';
  if (WebAssembly.validate(SIMD128_PROBE)) return 'simd128';
  return null;
}

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';

function fail(code, message) {
  throw new BitMambaError(code, message);
}

function check(result) {
  if (result.code !== 'ok') fail(result.code, result.message);
  return result;
}

function checkInteger(name, value, min, max) {
  if (!Number.isInteger(value) || value < min || value > max) {
    fail('invalid_argument', `${name} = ${String(value)} must be an integer in ${min}..${max}`);
  }
  return value;
}

// Token ids as an Int32Array; ranges against the vocabulary are the core's job.
function toIds(ids, what) {
  if (ids instanceof Int32Array) return ids;
  if (ids == null || typeof ids.length !== 'number') fail('invalid_argument', `${what} must be an Int32Array or an array of ids`);
  const out = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; ++i) {
    const v = ids[i];
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
      fail('invalid_argument', `${what}[${i}] = ${String(v)} is not a token id`);
    }
    out[i] = v;
  }
  return out;
}

function toBytes(bytes, what) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && bytes instanceof SharedArrayBuffer)) {
    return new Uint8Array(bytes);
  }
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return fail('invalid_argument', `${what} must be a Uint8Array or an ArrayBuffer`);
}

function toFloat(name, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') fail('invalid_argument', `${name} = ${String(value)} must be a number`);
  return value;  // NaN and ranges: the core's validate() names them
}

// The seed as the two 32-bit halves the bindings take.
function seedHalves(seed) {
  let s;
  if (seed === undefined) s = 0n;
  else if (typeof seed === 'bigint') s = seed;
  else if (Number.isSafeInteger(seed)) s = BigInt(seed);
  else fail('invalid_argument', `seed = ${String(seed)} must be a non-negative integer (a number or a BigInt)`);
  if (s < 0n || s >= 1n << 64n) fail('invalid_argument', `seed = ${s} must be in [0, 2^64)`);
  return [Number(s >> 32n), Number(s & 0xffffffffn)];
}

// Node reads our .js files as ES modules (the repository's package.json), so
// the Emscripten module's Node code lacks require/__dirname, and its pthread
// worker script must be the CommonJS copy (.worker.cjs) the build makes.
async function nodeModuleOptions(jsUrl) {
  const [{ createRequire }, { fileURLToPath }, path, fs] = await Promise.all([
    import('node:module'), import('node:url'), import('node:path'), import('node:fs'),
  ]);
  const file = fileURLToPath(jsUrl);
  const dir = path.dirname(file);
  globalThis.require ??= createRequire(jsUrl);
  globalThis.__dirname ??= dir;
  const wasmFile = file.replace(/\.js$/, '.wasm');
  let wasmBinary;
  try {
    wasmBinary = fs.readFileSync(wasmFile);
  } catch (e) {
    fail('io', `cannot read ${wasmFile}: ${e.message}`);
  }
  return {
    wasmBinary,
    locateFile: (name) => path.join(dir, name.endsWith('.worker.js') ? name.replace(/\.js$/, '.cjs') : name),
  };
}

// The build on another origin (a CDN): its pthread glue starts each thread
// as a classic worker from bitmamba-<variant>.worker.js, which a page may not
// do across origins. A same-origin blob that importScripts() that file may;
// the thread then imports the module from its absolute URL, as a blob's
// relative URLs resolve to nothing.
function crossOriginOptions(jsUrl) {
  let threadScript = null;
  return {
    mainScriptUrlOrBlob: jsUrl,
    locateFile(name) {
      const url = new URL(name, jsUrl).href;
      if (!name.endsWith('.worker.js')) return url;
      threadScript ??= URL.createObjectURL(new Blob([`importScripts(${JSON.stringify(url)});\n`], { type: 'text/javascript' }));
      return threadScript;
    },
  };
}

/**
 * Starts the wasm module.
 * @param {{ variant?: 'simd128' | 'relaxed', wasmBase?: string | URL, threads?: number }} options
 *   variant: default detectVariant(); wasmBase: the folder of bitmamba-<variant>.js (a URL, or a path
 *   under Node; default: ../build/wasm/dist/ from this file); threads: the most any model may use,
 *   default 1. threads - 1 worker threads start with the module; 1 starts none.
 */
export async function loadWasmEngine(options = {}) {
  const variant = options.variant ?? detectVariant();
  if (!VARIANTS.includes(variant)) {
    fail(variant == null ? 'unsupported' : 'invalid_argument',
      variant == null ? 'this JavaScript engine lacks WebAssembly SIMD128' : `variant '${variant}' must be simd128 or relaxed`);
  }
  const threads = checkInteger('threads', options.threads ?? 1, 1, MAX_THREADS);
  let base = options.wasmBase ?? new URL('../build/wasm/dist/', import.meta.url);
  if (isNode && typeof base === 'string' && !/^[a-z]+:/i.test(base)) {
    const [{ pathToFileURL }, path] = await Promise.all([import('node:url'), import('node:path')]);
    base = pathToFileURL(path.resolve(base) + path.sep);
  }
  base = String(base);
  const jsUrl = new URL(`bitmamba-${variant}.js`, base.endsWith('/') ? base : base + '/').href;
  const moduleOptions = { pthreadPoolSize: threads - 1 };
  if (isNode && jsUrl.startsWith('file:')) Object.assign(moduleOptions, await nodeModuleOptions(jsUrl));
  else if (!isNode && new URL(jsUrl).origin !== self.location.origin) Object.assign(moduleOptions, crossOriginOptions(jsUrl));

  let M;
  try {
    const factory = (await import(jsUrl)).default;
    M = await factory(moduleOptions);
  } catch (e) {
    if (e instanceof BitMambaError) throw e;
    fail('unsupported', `cannot start the ${variant} engine from ${jsUrl}: ${e && e.message ? e.message : e}`);
  }
  await workersLoaded(M);
  return new Engine(M, variant, threads);
}

// The pool's workers load the module in the background (PTHREAD_POOL_DELAY_LOAD,
// wasm/CMakeLists.txt); a thread starts synchronously only on a loaded one.
async function workersLoaded(M, timeoutMs = 60000) {
  const start = Date.now();
  while (M.PThread && !M.PThread.unusedWorkers.every((w) => w.loaded)) {
    if (Date.now() - start > timeoutMs) {
      fail('unsupported', `the engine's worker threads did not start within ${timeoutMs / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

// Pre-started pool workers that no thread runs on now: each can start a
// thread synchronously.
const freeWorkers = (M) => (M.PThread ? M.PThread.unusedWorkers.length : 0);

class Engine {
  constructor(M, variant, threads) {
    this.M = M;
    this.variant = variant;
    this.threads = threads;
    this.buffers = new Map();  // ptr -> 'caller' | 'model'
  }

  /** A heap buffer of `size` bytes for a model file: { ptr, size }. */
  allocBuffer(size) {
    checkInteger('buffer size', size, 1, 4294967295);
    const ptr = this.M.bufferAlloc(size);
    if (!ptr) fail('out_of_memory', `cannot allocate ${size} bytes in the wasm heap (its limit is 4 GiB)`);
    this.buffers.set(ptr, 'caller');
    return { ptr, size };
  }

  /** A Uint8Array over the buffer; take a fresh one after any call into wasm (the heap may grow). */
  heapView(buf) {
    this.bufferOwnedBy(buf, 'caller');
    return new Uint8Array(this.M.wasmMemory.buffer, buf.ptr, buf.size);
  }

  freeBuffer(buf) {
    if (!buf || !this.buffers.has(buf.ptr)) return;  // freed already: nothing to do
    this.bufferOwnedBy(buf, 'caller');
    this.finishPrefault();
    this.buffers.delete(buf.ptr);
    this.M.bufferFree(buf.ptr);
  }

  /**
   * Touches the buffer's pages on a free pool thread, from its end
   * backwards, while the caller fills it from the front (wasm/prefault.cpp):
   * the page faults of fresh memory then overlap the filling instead of
   * adding to it. Returns false, doing nothing, without a free pool thread
   * (threads: 1). finishPrefault() stops it; loadModel and freeBuffer call it.
   */
  startPrefault(buf) {
    this.bufferOwnedBy(buf, 'caller');
    if (freeWorkers(this.M) === 0) return false;
    return this.M.prefaultStart(buf.ptr, buf.size);
  }

  /** Stops the prefault thread (if any) and waits for it; its worker is free again after. */
  finishPrefault() {
    this.M.prefaultFinish();
  }

  bufferOwnedBy(buf, owner) {
    const o = buf && this.buffers.get(buf.ptr);
    if (o === undefined) fail('invalid_argument', 'not a live buffer of this engine');
    if (o !== owner) fail('invalid_argument', 'this buffer belongs to a model now (it is freed by model.dispose())');
  }

  /** Bytes of wasm memory now (it never shrinks, so also the peak). */
  heapBytes() {
    return this.M.wasmMemory.buffer.byteLength;
  }

  /** Bytes of the heap in use by malloc now: the heap is flat if this is. */
  heapInUse() {
    return this.M.heapInUse();
  }

  /**
   * Parses and repacks the model in `buf` in place. On success the model owns the buffer; on error
   * it stays the caller's (free it, or try again).
   * @param {{ threads?: number, isa?: string }} options threads: default the engine's
   */
  loadModel(buf, options = {}) {
    this.bufferOwnedBy(buf, 'caller');
    const threads = checkInteger('threads', options.threads ?? this.threads, 1, MAX_THREADS);
    this.finishPrefault();
    // Threads start synchronously only on a pre-started worker; one more
    // would wait for the event loop while this call spins.
    const free = freeWorkers(this.M);
    if (threads - 1 > free) {
      fail('invalid_argument', `threads = ${threads} needs ${threads - 1} worker thread(s), but ${free} of the ` +
        `engine's ${this.threads - 1} are free (loadWasmEngine({ threads }) sets the most)`);
    }
    const isa = options.isa ?? '';
    if (typeof isa !== 'string') fail('invalid_argument', 'isa must be a string');
    const m = new this.M.Model();
    const r = m.load(buf.ptr, buf.size, threads, isa);
    if (r.code !== 'ok') {
      m.delete();
      fail(r.code, r.message);
    }
    this.buffers.set(buf.ptr, 'model');
    return new Model(this, m, buf);
  }

  /** GPT-2 token ids of `text`: a string, or UTF-8 bytes (a Uint8Array; invalid UTF-8 is a bad_text error). */
  tokenize(text) {
    if (typeof text !== 'string' && !(text instanceof Uint8Array)) {
      fail('invalid_argument', 'tokenize(text) takes a string or a Uint8Array of UTF-8');
    }
    if (typeof text === 'string') {
      // A lone surrogate has no UTF-8 form (Embind would encode it as garbage).
      const lone = text.search(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
      if (lone >= 0) fail('bad_text', `the text has a lone surrogate at index ${lone} (it has no UTF-8 form)`);
    }
    return check(this.M.tokenize(text)).ids;
  }

  /** The text of `ids` (invalid UTF-8 becomes U+FFFD). */
  detokenize(ids) {
    return check(this.M.detokenize(toIds(ids, 'ids'))).text;
  }

  /** Stops the worker threads (models must be disposed first); lets Node exit. */
  dispose() {
    this.finishPrefault();
    if (this.M.PThread) this.M.PThread.terminateAllThreads();
  }
}

class Model {
  constructor(engine, native, buf) {
    this.engine = engine;
    this.native = native;
    this.buf = buf;
    this.sessions = new Set();
    this.info = Object.freeze({ ...native.info() });
  }

  live() {
    if (!this.native) fail('invalid_argument', 'this model was disposed');
    return this.native;
  }

  newSession() {
    const s = new Session(this, new this.engine.M.Session(this.live()));
    this.sessions.add(s);
    return s;
  }

  /** Frees the model, its sessions and its buffer. */
  dispose() {
    if (!this.native) return;
    for (const s of this.sessions) s.dispose();
    this.native.delete();  // joins the model's threads, frees the buffer
    this.native = null;
    this.engine.buffers.delete(this.buf.ptr);
  }
}

class Session {
  constructor(model, native) {
    this.model = model;
    this.native = native;
    this.busy = false;
  }

  live() {
    if (!this.native) fail('invalid_argument', 'this session was disposed');
    if (this.busy) fail('invalid_argument', 'this session is generating (called from onToken?)');
    return this.native;
  }

  /** Runs the ids through the model (a batched prefill); ids are checked first. */
  feed(ids) {
    check(this.live().feed(toIds(ids, 'ids')));
  }

  /** A Float32Array copy of the last logits, or null before the first feed. */
  logits() {
    return this.live().logits();
  }

  /**
   * Feeds the prompt (may be empty to continue), then samples up to maxTokens tokens, stopping after
   * <|endoftext|> (50256) or when onToken returns false.
   * @param {Int32Array | number[]} promptIds
   * @param {{ temperature?: number, repetitionPenalty?: number, minP?: number, topP?: number,
   *           topK?: number, seed?: number | bigint, logprobs?: number }} params defaults:
   *   docs/sampling.md, seed 0; logprobs (0..20): give onToken each token's log-probability and
   *   the `logprobs` likeliest alternatives
   * @param {number} maxTokens
   * @param {(token: number, textPiece: string, logprobs?: { logprob: number,
   *   topLogprobs: { token: number, text: string, logprob: number }[] }) => boolean | void} [onToken]
   *   textPiece: UTF-8 safe text this token completes (maybe ''); logprobs: only with
   *   params.logprobs, under the model's distribution before sampling's changes; return false to stop
   * @returns {{ promptTokens: number, generatedTokens: number, prefillMs: number, decodeMs: number,
   *             stoppedAtEos: boolean, tail: string }} tail: text still held back at the end (an
   *   unfinished character, as U+FFFD), to append after the last piece
   */
  generate(promptIds, params = {}, maxTokens = 200, onToken = undefined) {
    const native = this.live();
    const prompt = toIds(promptIds, 'promptIds');
    const p = params ?? {};
    const temperature = toFloat('temperature', p.temperature, 0.8);
    const penalty = toFloat('repetitionPenalty', p.repetitionPenalty, 1.15);
    const minP = toFloat('minP', p.minP, 0.05);
    const topP = toFloat('topP', p.topP, 0.9);
    const topK = checkInteger('topK', p.topK ?? 40, 0, 0x7fffffff);
    const [seedHi, seedLo] = seedHalves(p.seed);
    const topLogprobs = p.logprobs === undefined ? -1 : checkInteger('logprobs', p.logprobs, 0, MAX_LOGPROBS);
    checkInteger('maxTokens', maxTokens, 0, 0x7fffffff);
    if (onToken !== undefined && typeof onToken !== 'function') fail('invalid_argument', 'onToken must be a function');
    const r = this.callWithCallback(
      (token, piece, lp) => !onToken || onToken(token, piece, ...(lp ? [{ logprob: lp.logprob, topLogprobs: lp.top }] : [])) !== false,
      (callback) => native.generate(prompt, temperature, penalty, minP, topP, topK, seedHi, seedLo, maxTokens, topLogprobs,
        callback));
    return {
      promptTokens: r.promptTokens, generatedTokens: r.generatedTokens, prefillMs: r.prefillMs,
      decodeMs: r.decodeMs, stoppedAtEos: r.stoppedAtEos, tail: r.tail,
    };
  }

  // Runs `call(safe)`, a core call that calls back into JS, with the session
  // marked busy (no re-entry). An exception from `callback` must not unwind
  // through the wasm frames: `safe` catches it and returns false, so the core
  // stops cleanly, and it is thrown once the core has returned.
  callWithCallback(callback, call) {
    let thrown = null;
    const safe = (...args) => {
      try {
        return callback(...args);
      } catch (e) {
        thrown = { e };
        return false;
      }
    };
    this.busy = true;
    let r;
    try {
      r = call(safe);
    } finally {
      this.busy = false;
    }
    if (thrown) throw thrown.e;
    return check(r);
  }

  /**
   * The log-likelihood of each continuation after the context, tokenized as lm-eval-harness does
   * (docs/evaluation.md): a Float64Array. Leaves the session after the last continuation.
   * @param {string} context
   * @param {string[]} continuations
   */
  score(context, continuations) {
    const native = this.live();
    if (typeof context !== 'string') fail('invalid_argument', 'score(context, continuations): context must be a string');
    if (!Array.isArray(continuations) || continuations.length === 0 || continuations.some((c) => typeof c !== 'string')) {
      fail('invalid_argument', 'score(context, continuations): continuations must be a non-empty array of strings');
    }
    for (const t of [context, ...continuations]) this.model.engine.tokenize(t);  // bad_text errors, as tokenize() names them
    return check(native.score(context, continuations)).logliks;
  }

  /**
   * Perplexity of `text` (docs/evaluation.md): scored after <|endoftext|>, in one pass or with the
   * state reset every `window` tokens. Resets the session first.
   * @param {string} text
   * @param {{ window?: number, onProgress?: (done: number, total: number) => boolean | void }} [options]
   * @returns {{ tokens: number, nll: number, ppl: number, wordPpl: number, bitsPerByte: number,
   *             words: number, bytes: number }}
   */
  perplexity(text, options = {}) {
    const native = this.live();
    if (typeof text !== 'string') fail('invalid_argument', 'perplexity(text): text must be a string');
    this.model.engine.tokenize(text);
    const window = checkInteger('window', options?.window ?? 0, 0, 0x7fffffff);
    const onProgress = options?.onProgress;
    if (onProgress !== undefined && typeof onProgress !== 'function') fail('invalid_argument', 'onProgress must be a function');
    const r = this.callWithCallback(
      (done, total) => !onProgress || onProgress(done, total) !== false,
      (progress) => native.perplexity(text, window, progress));
    return {
      tokens: r.tokens, nll: r.nll, ppl: Math.exp(r.nll / r.tokens), wordPpl: Math.exp(r.nll / r.words),
      bitsPerByte: r.nll / r.bytes / Math.LN2, words: r.words, bytes: r.bytes,
    };
  }

  /** The state (conv + SSM, seen tokens, position, last logits) as bytes. */
  snapshot() {
    return this.live().snapshot();
  }

  restore(bytes) {
    check(this.live().restore(toBytes(bytes, 'snapshot')));
  }

  /** Back to the empty context. */
  reset() {
    this.live().reset();
  }

  dispose() {
    if (!this.native) return;
    this.native.delete();
    this.native = null;
    this.model.sessions.delete(this);
  }
}
