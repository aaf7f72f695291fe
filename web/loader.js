// Getting model bytes into the wasm heap: from the network (with the cache),
// from the cache, from a File/Blob, or from an ArrayBuffer. Runs in the worker.
//
// A download streams straight into one buffer allocated in the wasm heap:
// each network chunk is copied once, to its final place, and (when caching)
// hashed and written to the cache file at the same time. The buffer's size
// comes from the BIT2 header and the embedding's type tag in the first 24
// bytes (bit2.js), so a missing Content-Length costs nothing: the progress
// total is known from the 24th byte on, and a body longer or shorter than
// the header says is refused.
// When Content-Length is present it must agree with the header (unless the
// body is content-encoded, where it counts compressed bytes).

import { BitMambaError, asBitMambaError } from './errors.js';
import { parseBit2Prefix, BIT2_PREFIX_BYTES } from './bit2.js';
import { Sha256 } from './sha256.js';
import { CacheWriter, lookupCached, readCached, removeCached, quotaAllows, probeCache } from './model-cache.js';

const PROGRESS_INTERVAL_MS = 50;
// Bytes handed to the hash worker but not hashed yet, at most: a network
// faster than hashing must not queue up a second copy of the model.
const HASH_BACKLOG_BYTES = 32 << 20;
const MiB = 1 << 20;

function formatMiB(bytes) {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

function throttled(onProgress, phase) {
  let last = 0;
  return (loaded, total, force = false) => {
    const now = performance.now();
    if (!force && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    onProgress({ loaded, total, phase });
  };
}

/**
 * SHA-256 of a stream of chunks, computed in a nested worker so that hashing
 * (~100-200 MiB/s in JS) overlaps the download instead of following it.
 * Falls back to hashing inline where workers cannot start workers.
 */
class ParallelSha256 {
  constructor() {
    this.sent = 0;
    this.done = 0;
    this.waiters = [];
    this.failed = null;
    this.inline = null;
    try {
      this.worker = new Worker(new URL('./hash-worker.js', import.meta.url), { type: 'module', name: 'bitmamba-hash' });
    } catch {
      this.worker = null;
      this.inline = new Sha256();
      return;
    }
    this.worker.onmessage = (e) => {
      this.done = e.data.done;
      if (e.data.hex) this.result = e.data.hex;
      this.wake();
    };
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.failed = new Error(`hash worker: ${e.message || 'failed to start'}`);
      this.wake();
    };
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  async until(condition) {
    while (!condition() && !this.failed) await new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Takes ownership of `chunk` (its buffer may be transferred). */
  async update(chunk) {
    if (this.inline) {
      this.inline.update(chunk);
      return;
    }
    if (this.failed) return;
    const whole = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength &&
      !(typeof SharedArrayBuffer !== 'undefined' && chunk.buffer instanceof SharedArrayBuffer);
    const buffer = whole ? chunk.buffer : chunk.slice().buffer;
    this.sent += chunk.byteLength;
    this.worker.postMessage(buffer, [buffer]);
    if (this.sent - this.done > HASH_BACKLOG_BYTES) await this.until(() => this.sent - this.done <= HASH_BACKLOG_BYTES);
  }

  /** Hex digest, or null if hashing failed (the download itself is fine then). */
  async hex() {
    if (this.inline) return this.inline.hex();
    if (this.failed) return null;
    this.worker.postMessage('digest');
    await this.until(() => this.result);
    this.close();
    return this.failed ? null : this.result;
  }

  close() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
  }
}

/**
 * Receives a model's bytes in order and puts them in a heap buffer sized by
 * the header. Optionally hashes them and mirrors them into a cache file.
 */
class HeapSink {
  constructor(engineReady, { knownSize, hash, openWriter, progress }) {
    this.engineReady = engineReady;  // the engine may still be starting while the first bytes arrive
    this.engine = null;
    this.knownSize = knownSize;   // from Content-Length or Blob.size; null if unknown
    this.hash = hash ? new ParallelSha256() : null;
    this.openWriter = openWriter; // async (size) => CacheWriter | null
    this.progress = progress;
    this.head = new Uint8Array(BIT2_PREFIX_BYTES);
    this.headLength = 0;
    this.buf = null;
    this.size = 0;
    this.loaded = 0;
    this.writer = null;
    this.header = null;
  }

  async push(chunk) {
    if (!this.buf) {
      const take = Math.min(BIT2_PREFIX_BYTES - this.headLength, chunk.length);
      this.head.set(chunk.subarray(0, take), this.headLength);
      this.headLength += take;
      if (this.headLength < BIT2_PREFIX_BYTES) return;
      await this.allocate();
      await this.write(this.head.slice());
      chunk = chunk.subarray(take);
      if (chunk.length === 0) return;
    }
    await this.write(chunk);
  }

  async allocate() {
    this.header = parseBit2Prefix(this.head);
    const size = this.header.fileBytes;
    this.engine = await this.engineReady;
    if (this.knownSize != null && this.knownSize !== size) {
      throw new BitMambaError('corrupt_model',
        this.knownSize < size
          ? `The model file is truncated: ${this.knownSize} bytes, but its header describes ${size}.`
          : `The model file has ${this.knownSize - size} bytes of trailing data after the ${size} its header describes.`,
        { size: this.knownSize, expected: size });
    }
    try {
      this.buf = this.engine.allocBuffer(size);
    } catch (e) {
      throw new BitMambaError('quota',
        `Not enough memory for this model (${formatMiB(size)}): the browser refused to grow WebAssembly memory. ` +
        'Close other tabs or pick a smaller model.', { size, cause: String(e && e.message || e) });
    }
    this.size = size;
    if (this.openWriter) this.writer = await this.openWriter(size);
    if (this.hash && !this.writer) {  // not caching after all: the hash has no use
      this.hash.close();
      this.hash = null;
    }
  }

  async write(chunk) {
    if (this.loaded + chunk.length > this.size) {
      throw new BitMambaError('corrupt_model',
        `The model file is longer than the ${this.size} bytes its header describes.`, { expected: this.size });
    }
    const at = this.loaded;
    this.loaded += chunk.length;
    // A fresh view each time: any call into wasm may have grown (replaced) the heap.
    this.engine.heapView(this.buf).set(chunk, at);
    if (this.writer) this.writer.write(chunk, at);
    this.progress(this.loaded, this.size);
    if (this.hash) await this.hash.update(chunk);  // last: it may take the chunk's buffer
  }

  async finish() {
    if (!this.buf) {
      parseBit2Prefix(this.head.subarray(0, this.headLength));  // throws not_a_model
    }
    if (this.loaded !== this.size) {
      throw new BitMambaError('corrupt_model',
        `The model file is truncated: ${this.loaded} bytes, but its header describes ${this.size}.`,
        { size: this.loaded, expected: this.size });
    }
    this.progress(this.loaded, this.size, true);
    return this.hash ? this.hash.hex() : null;
  }

  async abandon() {
    if (this.hash) this.hash.close();
    if (this.writer) await this.writer.discard();
    if (this.buf) this.engine.freeBuffer(this.buf);
    this.buf = null;
  }
}

async function drain(reader, sink, signal) {
  for (;;) {
    if (signal.aborted) throw new BitMambaError('aborted', 'Loading was cancelled.');
    let step;
    try {
      step = await reader.read();
    } catch (e) {
      if (signal.aborted || (e && e.name === 'AbortError')) throw new BitMambaError('aborted', 'Loading was cancelled.');
      throw e;
    }
    if (step.done) return;
    await sink.push(step.value);
  }
}

/**
 * Result of every loader: the heap buffer (owned by the caller now) and what
 * is known about where it came from. `commit()` writes the cache entry and
 * must be called only after the engine accepted the bytes; `discard()` undoes.
 * @typedef {{buf: object, bytes: number, source: string, sha256: string|null,
 *   cache: {status: string, reason?: string, message?: string},
 *   commit: () => Promise<void>, discard: () => Promise<void>}} Loaded
 */

/** @returns {Promise<Loaded>} */
export async function loadFromUrl(engineReady, url, { cache, signal, onProgress }) {
  const absolute = new URL(url, self.location.href).href;
  let cacheState = { status: 'off', reason: 'disabled' };
  let useCache = false;
  if (cache) {
    const probe = await probeCache();
    useCache = probe.ok;
    if (!useCache) cacheState = { status: 'off', reason: 'unsupported', message: `this browser cannot keep the model; it downloads each visit (${probe.reason})` };
  }

  if (useCache) {
    const entry = await lookupCached(absolute).catch(() => null);
    if (entry) {
      const loaded = await loadFromCache(await engineReady, entry, signal, onProgress);
      if (loaded) return loaded;
    }
  }

  const progress = throttled(onProgress, 'download');
  onProgress({ loaded: 0, total: null, phase: 'download' });
  let response;
  try {
    // no-store: the cache below keeps the one copy; the HTTP cache would keep a second.
    response = await fetch(absolute, { signal, cache: useCache ? 'no-store' : 'default', credentials: 'same-origin' });
  } catch (e) {
    if (signal.aborted) throw new BitMambaError('aborted', 'Loading was cancelled.');
    throw new BitMambaError('network',
      `Could not download ${absolute}: ${e && e.message ? e.message : e}. Check the connection (and, for another site, that it allows cross-origin requests).`);
  }
  if (!response.ok) {
    throw new BitMambaError('http_status',
      `The server answered ${response.status}${response.statusText ? ' ' + response.statusText : ''} for ${absolute}.`,
      { status: response.status });
  }
  if (!response.body) throw new BitMambaError('unsupported_browser', 'This browser cannot stream a download (no Response.body).');

  // Content-Length counts encoded bytes when the body is compressed, and a
  // cross-origin response hides Content-Encoding unless the server exposes
  // it: there the length only seeds the progress total, it is not checked.
  const encoding = response.headers.get('content-encoding');
  const lengthHeader = response.headers.get('content-length');
  const length = lengthHeader !== null ? Number(lengthHeader) : null;
  const identity = encoding === 'identity' || (encoding === null && response.type === 'basic');
  const knownSize = identity ? length : null;

  if (useCache) {
    cacheState = { status: 'pending' };
    if (length != null) {
      const room = await quotaAllows(length).catch(() => ({ ok: true }));
      if (!room.ok) cacheState = { status: 'skipped', reason: 'quota', free: room.free, message: `only ${formatMiB(room.free)} of storage free` };
    }
  }
  const openWriter = cacheState.status === 'pending' ? async (size) => {
    const room = await quotaAllows(size).catch(() => ({ ok: true }));
    if (!room.ok) {
      cacheState = { status: 'skipped', reason: 'quota', free: room.free, message: `only ${formatMiB(room.free)} of storage free` };
      return null;
    }
    try {
      return await CacheWriter.open(size);
    } catch (e) {
      cacheState = { status: 'skipped', reason: e && e.name === 'QuotaExceededError' ? 'quota' : 'storage_error', message: String(e && e.message || e) };
      return null;
    }
  } : null;

  const sink = new HeapSink(engineReady, { knownSize, hash: !!openWriter, openWriter, progress: (l, t, f) => progress(l, t || length, f) });
  let sha256;
  try {
    await drain(response.body.getReader(), sink, signal);
    sha256 = await sink.finish();
  } catch (e) {
    await sink.abandon();
    const err = asBitMambaError(e);
    if (err.code === 'internal' && e instanceof TypeError) {
      throw new BitMambaError('network',
        `The download of ${absolute} broke off after ${formatMiB(sink.loaded)}${sink.size ? ' of ' + formatMiB(sink.size) : ''}: ${e.message}.`,
        { loaded: sink.loaded, total: sink.size || null });
    }
    throw err;
  }

  const writer = sink.writer;
  if (writer && !sha256) await writer.discard();  // hashing failed: no key to store it under
  if (writer && writer.skipped) cacheState = { status: 'skipped', ...writer.skipped };
  return {
    buf: sink.buf,
    bytes: sink.size,
    source: 'network',
    url: absolute,
    sha256,
    get cache() { return cacheState; },
    async commit() {
      if (!writer || writer.skipped) {
        if (writer && writer.skipped) cacheState = { status: 'skipped', ...writer.skipped };
        return;
      }
      const ok = await writer.commit(absolute, sink.size, sha256, { etag: response.headers.get('etag') });
      cacheState = ok ? { status: 'stored' } : { status: 'skipped', ...writer.skipped };
    },
    async discard() {
      if (writer) await writer.discard();
    },
  };
}

async function loadFromCache(engine, entry, signal, onProgress) {
  const progress = throttled(onProgress, 'cache');
  let buf;
  try {
    buf = engine.allocBuffer(entry.size);
  } catch (e) {
    throw new BitMambaError('quota', `Not enough memory for this model (${formatMiB(entry.size)}).`, { size: entry.size });
  }
  try {
    progress(0, entry.size, true);
    await readCached(entry, () => engine.heapView(buf), (loaded) => progress(loaded, entry.size), signal);
    progress(entry.size, entry.size, true);
    parseBit2Prefix(engine.heapView(buf).subarray(0, BIT2_PREFIX_BYTES));
  } catch (e) {
    engine.freeBuffer(buf);
    if (signal.aborted) throw new BitMambaError('aborted', 'Loading was cancelled.');
    await removeCached(entry.url).catch(() => {});
    return null;  // a damaged entry: download again
  }
  return {
    buf,
    bytes: entry.size,
    source: 'cache',
    url: entry.url,
    sha256: entry.sha256,
    cache: { status: 'hit' },
    async commit() {},
    // The engine refused bytes that were accepted when stored: drop the entry.
    async discard() { await removeCached(entry.url).catch(() => {}); },
  };
}

/** @returns {Promise<Loaded>} */
export async function loadFromBlob(engineReady, blob, { signal, onProgress }) {
  const progress = throttled(onProgress, 'file');
  onProgress({ loaded: 0, total: blob.size, phase: 'file' });
  const sink = new HeapSink(engineReady, { knownSize: blob.size, hash: false, openWriter: null, progress });
  try {
    await drain(blob.stream().getReader(), sink, signal);
    await sink.finish();
  } catch (e) {
    await sink.abandon();
    const err = asBitMambaError(e);
    if (err.code === 'internal') throw new BitMambaError('network', `Could not read the file: ${err.message}`);
    throw err;
  }
  return {
    buf: sink.buf, bytes: sink.size, source: 'file', url: null, sha256: null,
    cache: { status: 'off', reason: 'local file' },
    async commit() {}, async discard() {},
  };
}

/** One copy, into the heap; the transferred ArrayBuffer is dropped afterwards. */
export async function loadFromArrayBuffer(engineReady, arrayBuffer, { onProgress }) {
  const bytes = new Uint8Array(arrayBuffer);
  const progress = throttled(onProgress, 'file');
  const sink = new HeapSink(engineReady, { knownSize: bytes.length, hash: false, openWriter: null, progress });
  try {
    await sink.push(bytes);
    await sink.finish();
  } catch (e) {
    await sink.abandon();
    throw e;
  }
  return {
    buf: sink.buf, bytes: sink.size, source: 'buffer', url: null, sha256: null,
    cache: { status: 'off', reason: 'ArrayBuffer source' },
    async commit() {}, async discard() {},
  };
}
