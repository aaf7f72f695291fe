// BitMamba-2 in the browser: the page-side API. Everything heavy runs in a
// module worker (worker.js) that owns the wasm engine; this file only sends
// requests and turns the replies into promises and async iterables.
//
//   import { BitMamba } from './bitmamba.js';
//   const model = await BitMamba.load('models/tiny.bin', {
//     onProgress: ({ loaded, total, phase }) => console.log(phase, loaded, total),
//   });
//   const run = model.generate('The meaning of life is', { maxTokens: 50, seed: 42 });
//   for await (const { text } of run) output.append(text);
//   console.log(await run.stats);   // prefill / decode tok/s, stop reason
//   model.dispose();
//
// Errors are BitMambaError {name, code, message}; see errors.js for the codes.
// Types: bitmamba.d.ts.

import { BitMambaError, errorFromMessage } from './errors.js';
import { clearCache as clearModelCache, listCached, removeCached } from './model-cache.js';

export { BitMambaError };

// One worker, its pending requests, and the message protocol (see worker.js).
class WorkerClient {
  constructor(worker, url) {
    this.worker = worker;
    this.nextId = 1;
    this.pending = new Map();  // id -> {resolve, reject, onEvent}
    this.dead = null;
    let started = false;
    this.ready = new Promise((resolve, reject) => {
      worker.onmessage = (e) => {
        if (e.data && e.data.type === 'ready') {
          started = true;
          this.watchLife(e.data.lifeLock);
          resolve();
        } else {
          this.receive(e.data);
        }
      };
      worker.onerror = (e) => {
        e.preventDefault?.();
        const err = started
          ? new BitMambaError('internal', `The BitMamba worker stopped${e.message ? ': ' + e.message : ''}. Load the model again.`)
          : new BitMambaError('unsupported_browser',
            `The BitMamba worker (${url}) failed to start${e.message ? ': ' + e.message : ''}. ` +
            'It and the files beside it must be served there (a bundler does not copy them: pass workerUrl), ' +
            'and the browser needs module workers (Chrome 80+, Firefox 114+, Safari 15+).');
        reject(err);
        this.fail(err);
      };
    });
  }

  // Granted only when the worker that holds this lock is gone (terminated by
  // the browser, crashed): pending and later calls then fail with 'internal'
  // instead of waiting forever.
  watchLife(lock) {
    if (!lock || !globalThis.navigator?.locks) return;
    navigator.locks.request(lock, () => {
      if (!this.dead) this.fail(new BitMambaError('internal', 'The BitMamba worker stopped. Load the model again.'));
    }).catch(() => {});
  }

  receive(msg) {
    const entry = this.pending.get(msg.id);
    if (!entry) return;
    if (msg.type === 'event') {
      entry.onEvent?.(msg.event, msg.data);
    } else if (msg.type === 'return') {
      this.pending.delete(msg.id);
      entry.cleanup?.();
      entry.resolve(msg.value);
    } else if (msg.type === 'throw') {
      this.pending.delete(msg.id);
      entry.cleanup?.();
      entry.reject(errorFromMessage(msg.error));
    }
  }

  fail(err) {
    this.dead = err;
    for (const entry of this.pending.values()) {
      entry.cleanup?.();
      entry.reject(err);
    }
    this.pending.clear();
  }

  /**
   * @returns {{id: number, promise: Promise<any>}}
   */
  request(op, args, { transfer = [], signal, onEvent } = {}) {
    const id = this.nextId++;
    const promise = new Promise((resolve, reject) => {
      if (this.dead) return reject(this.dead);
      if (signal?.aborted) return reject(new BitMambaError('aborted', 'Stopped before it started.'));
      const onAbort = () => this.abort(id);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, { resolve, reject, onEvent, cleanup: () => signal?.removeEventListener('abort', onAbort) });
      this.worker.postMessage({ id, op, args }, transfer);
    });
    return { id, promise };
  }

  call(op, args, options) {
    return this.request(op, args, options).promise;
  }

  abort(id) {
    if (!this.dead) this.worker.postMessage({ op: 'abort', target: id });
  }

  terminate(reason) {
    this.worker.terminate();
    this.fail(reason);
  }
}

// A shared stop flag where a SharedArrayBuffer can be made and posted (a
// browser may be cross-origin isolated and still have no such global, as
// WebKitGTK); null elsewhere, and the abort message stops the run.
function sharedStopFlag() {
  if (typeof SharedArrayBuffer !== 'function') return null;
  try {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    new MessageChannel().port1.postMessage(flag);
    return flag;
  } catch {
    return null;
  }
}

function toInt32(tokens) {
  return tokens instanceof Int32Array ? tokens.slice() : Int32Array.from(tokens);
}

/**
 * The pieces of one generate() call, as an async iterable. Breaking out of a
 * for-await loop stops the generation, as stop() does.
 */
class Generation {
  constructor(client, input, options) {
    this.queue = [];
    this.waiters = [];
    this.finished = false;
    this.error = null;
    this.stopRequestedAt = null;
    const { signal, ...rest } = options;
    // Where memory can be shared, Stop is a flag the worker reads before
    // each token: no message has to reach it first. Elsewhere the abort
    // message alone stops the run.
    this.stopFlag = sharedStopFlag();
    signal?.addEventListener('abort', () => { if (this.stopFlag) Atomics.store(this.stopFlag, 0, 1); }, { once: true });
    const args = {
      input: typeof input === 'string' ? input : { tokens: toInt32(input.tokens) },
      options: rest,
      stopFlag: this.stopFlag,
    };
    const transfer = typeof input === 'string' ? [] : [args.input.tokens.buffer];
    const { id, promise } = client.request('generate', args, {
      transfer,
      signal,
      onEvent: (event, data) => {
        if (event === 'tokens') for (const piece of data) this.push({ value: piece, done: false });
      },
    });
    this.id = id;
    this.client = client;
    /** @type {Promise<object>} resolves with the run's statistics when it ends */
    this.stats = promise
      .then((stats) => {
        // stop() ends a run normally; an AbortSignal makes it an 'aborted' error.
        if (signal?.aborted) throw new BitMambaError('aborted', 'Generation was aborted.', { stats });
        return stats;
      })
      .then(
        (stats) => { this.finish(null); return stats; },
        (err) => { this.finish(err); throw err; },
      );
    this.stats.catch(() => {});  // the iterator reports the error too
  }

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(item);
    else this.queue.push(item);
  }

  finish(err) {
    this.finished = true;
    this.error = err;
    for (const waiter of this.waiters.splice(0)) {
      if (err) waiter.reject(err);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  /** Ends the run after the token being computed; stats.stopReason becomes 'stopped'. */
  stop() {
    if (this.finished) return;
    this.stopRequestedAt = performance.timeOrigin + performance.now();
    if (this.stopFlag) Atomics.store(this.stopFlag, 0, 1);
    this.client.abort(this.id);
  }

  next() {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    if (this.finished) {
      return this.error ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  async return() {
    this.stop();
    await this.stats.catch(() => {});
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

class Model {
  constructor(client, info) {
    this.client = client;
    /** Shape, threads, SIMD variant, cache status; see bitmamba.d.ts */
    this.info = Object.freeze(info);
    this.disposed = false;
  }

  check() {
    if (this.disposed) throw new BitMambaError('disposed', 'This model was disposed.');
  }

  /**
   * @param {string | {tokens: ArrayLike<number>}} input
   * @param {object} [options] maxTokens, temperature, topK, topP, minP,
   *   repetitionPenalty, seed, signal, continue, logprobs
   */
  generate(input, options = {}) {
    this.check();
    return new Generation(this.client, input, options);
  }

  async tokenize(text) {
    this.check();
    return this.client.call('tokenize', { text: String(text) });
  }

  async detokenize(tokens) {
    this.check();
    return this.client.call('detokenize', { tokens: Array.from(tokens) });
  }

  /** Logits [vocab] after feeding `tokens` from an empty state; the generation state is untouched. */
  async logits(tokens) {
    this.check();
    const ids = toInt32(tokens);
    return this.client.call('logits', { tokens: ids }, { transfer: [ids.buffer] });
  }

  /** Log-likelihood of each continuation after the context (docs/evaluation.md); the generation state is untouched. */
  async score(context, continuations) {
    this.check();
    return this.client.call('score', { context, continuations });
  }

  /** Perplexity figures of `text` (docs/evaluation.md); the generation state is untouched. */
  async perplexity(text, { window = 0, onProgress } = {}) {
    this.check();
    return this.client.call('perplexity', { text, window }, {
      onEvent: (event, data) => { if (event === 'progress' && onProgress) onProgress(data); },
    });
  }

  /** The generation state (after the last generate) as bytes. */
  async snapshot() {
    this.check();
    return this.client.call('snapshot', {});
  }

  /**
   * Back to a snapshot; continue with generate(prompt, {continue: true}).
   * The bytes are copied, not transferred, so one snapshot can be restored many times.
   */
  async restore(bytes) {
    this.check();
    return this.client.call('restore', { bytes: new Uint8Array(bytes) });
  }

  async reset() {
    this.check();
    return this.client.call('reset', {});
  }

  /** {heapBytes, modelBytes}: the wasm memory of this model's worker. */
  async memory() {
    this.check();
    return this.client.call('memory', {});
  }

  /** Frees the model and ends its worker; a generation in progress ends with 'aborted'. */
  async dispose() {
    if (this.disposed) return;
    this.disposed = true;
    await this.client.call('dispose', {}).catch(() => {});
    this.client.terminate(new BitMambaError('disposed', 'This model was disposed.'));
  }
}

function supportProblem() {
  if (typeof WebAssembly !== 'object') return 'This browser has no WebAssembly.';
  if (typeof Worker !== 'function') return 'This browser has no Web Workers.';
  if (typeof ReadableStream !== 'function') return 'This browser cannot stream downloads.';
  return null;
}

const baseUrl = () => globalThis.document?.baseURI ?? self.location.href;

// A variable, not a string literal: bundlers rewrite new URL() of a literal
// and import.meta.url into a copy of that one file, without the modules it
// imports. The worker and the engine are served as the package ships them
// (next to this file, or where options.workerUrl says).
const WORKER_FILE = './worker.js';

// A page may not start a worker from another origin's URL (a CDN), but a
// worker of its own origin may import that module: a same-origin blob does.
// Returns the worker and a function to call once it has started.
function startWorker(url) {
  const options = { type: 'module', name: 'bitmamba' };
  if (new URL(url).origin === self.location.origin) return { worker: new Worker(url, options), started: () => {} };
  const blobUrl = URL.createObjectURL(new Blob([`import ${JSON.stringify(url)};\n`], { type: 'text/javascript' }));
  try {
    return { worker: new Worker(blobUrl, options), started: () => URL.revokeObjectURL(blobUrl) };
  } catch (e) {
    URL.revokeObjectURL(blobUrl);
    throw e;
  }
}

function normalizeSource(source) {
  if (typeof source === 'string' || source instanceof URL) {
    return { source: { url: new URL(String(source), baseUrl()).href }, transfer: [] };
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) return { source: { blob: source }, transfer: [] };
  if (source instanceof ArrayBuffer) return { source: { buffer: source }, transfer: [source] };
  if (ArrayBuffer.isView(source)) {
    const copy = source.buffer.slice(source.byteOffset, source.byteOffset + source.byteLength);
    return { source: { buffer: copy }, transfer: [copy] };
  }
  throw new BitMambaError('invalid_argument', 'BitMamba.load(source): source must be a URL, a File/Blob or an ArrayBuffer.');
}

export const BitMamba = {
  /**
   * Downloads (or reads from the cache), validates and loads a BIT2 model in a new worker.
   * An ArrayBuffer source is transferred: it is detached in the caller afterwards.
   */
  async load(source, options = {}) {
    const problem = supportProblem();
    if (problem) throw new BitMambaError('unsupported_browser', problem);
    const { source: src, transfer } = normalizeSource(source);
    const workerUrl = new URL(String(options.workerUrl ?? new URL(WORKER_FILE, import.meta.url)), baseUrl()).href;
    let worker, started;
    try {
      ({ worker, started } = startWorker(workerUrl));
    } catch (e) {
      throw new BitMambaError('unsupported_browser', `Cannot start a module worker: ${e.message}`);
    }
    const client = new WorkerClient(worker, workerUrl);
    try {
      await client.ready.finally(started);
      const info = await client.call('load', {
        source: src,
        options: {
          threads: options.threads,
          cache: options.cache !== false,
          retries: options.retries,
          wasmBase: options.wasmBase ? new URL(String(options.wasmBase), baseUrl()).href : undefined,
          variant: options.variant,
          kernels: options.kernels,
        },
      }, {
        transfer,
        signal: options.signal,
        onEvent: (event, data) => { if (event === 'progress') options.onProgress?.(data); },
      });
      return new Model(client, info);
    } catch (e) {
      client.terminate(e);
      throw e;
    }
  },

  // The cache calls never fail: where the browser has no usable storage
  // there is nothing cached, so the list is empty and removing is a no-op.

  /** Removes every cached model of this origin. */
  async clearCache() {
    await clearModelCache().catch(() => {});
  },

  /** The cached models: [{url, size, sha256, storedAt}]; empty where storage is unavailable. */
  async cachedModels() {
    const entries = await listCached().catch(() => []);
    return entries.map(({ url, size, sha256, storedAt }) => ({ url, size, sha256, storedAt }));
  },

  /** Removes the cached copy of one URL. */
  async removeCached(url) {
    let href;
    try {
      href = new URL(String(url), baseUrl()).href;
    } catch {
      throw new BitMambaError('invalid_argument', `removeCached(url): ${String(url)} is not a URL.`);
    }
    await removeCached(href).catch(() => {});
  },

  /** Whether the page is cross-origin isolated, which threads need (model.info.threadsReason says if they ran). */
  get crossOriginIsolated() {
    return self.crossOriginIsolated === true;
  },
};

export default BitMamba;
