// Where a model's bytes go as they arrive: one buffer in the wasm heap sized
// by the BIT2 header, and (when caching) a SHA-256 and the cache file,
// filled at the same time. Used by every loader (loader.js, download.js).
//
// Each chunk is copied once, to its final place. The buffer's size comes
// from the BIT2 header and the embedding's type tag in the first 24 bytes
// (bit2.js), so a missing Content-Length costs nothing: the progress total
// is known from the 24th byte on, and a body longer or shorter than the
// header says is refused.

import { BitMambaError } from './errors.js';
import { parseBit2Prefix, BIT2_PREFIX_BYTES } from './bit2.js';
import { Sha256 } from './sha256.js';
import { WasmSha256 } from './sha256-wasm.js';

const PROGRESS_INTERVAL_MS = 50;
// Bytes copied for the hash worker but not hashed yet, at most.
const HASH_BACKLOG_BYTES = 32 << 20;
const HASH_BATCH_BYTES = 1 << 20;
const MiB = 1 << 20;

export function formatMiB(bytes) {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

export function throttled(onProgress, phase) {
  let last = 0;
  return (loaded, total, force = false) => {
    const now = performance.now();
    if (!force && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    onProgress({ loaded, total, phase });
  };
}

const isShared = (buffer) => Object.prototype.toString.call(buffer) === '[object SharedArrayBuffer]';

/**
 * SHA-256 of the bytes written into the heap buffer, computed in a nested
 * worker so that hashing overlaps the download instead of following it.
 * The worker reads each 1 MiB written straight from the heap (shared memory,
 * posted once per batch, no copy); where shared memory cannot be posted
 * (a page that is not cross-origin isolated) each batch is copied and
 * transferred. `module` (a promise of the compiled wasm SHA-256, or of
 * null) picks the hasher; without it, or where workers cannot start
 * workers, the hash is computed in JS, inline in the second case.
 */
export class ParallelSha256 {
  constructor(module) {
    this.sent = 0;
    this.done = 0;
    this.waiters = [];
    this.failed = null;
    this.inline = null;
    this.from = 0;     // the heap bytes [from, to) are written and not yet sent
    this.to = 0;
    this.copying = false;
    try {
      this.worker = new Worker(new URL('./hash-worker.js', import.meta.url), { type: 'module', name: 'bitmamba-hash' });
    } catch {
      this.worker = null;
      this.inline = Promise.resolve(module).then((m) => (m ? new WasmSha256(m) : new Sha256()));
      return;
    }
    this.started = Promise.resolve(module).then((m) => this.worker?.postMessage({ module: m }));
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

  /** Hashes bytes [at, at + n) of `heap` (a fresh view of the buffer), which follow the bytes before them. */
  async update(heap, at, n) {
    if (this.inline) {
      (await this.inline).update(heap.subarray(at, at + n));
      return;
    }
    this.to = at + n;
    if (this.to - this.from >= HASH_BATCH_BYTES) await this.flush(heap);
  }

  async flush(heap) {
    if (this.to === this.from) return;
    await this.started;
    if (this.failed || !this.worker) return;
    const view = heap.subarray(this.from, this.to);
    this.sent += view.length;
    this.from = this.to;
    if (!this.copying && isShared(view.buffer)) {
      try {
        this.worker.postMessage({ shared: view.buffer, at: view.byteOffset, length: view.length });
        return;
      } catch {
        this.copying = true;  // a SharedArrayBuffer that cannot be posted: not cross-origin isolated
      }
    }
    const copy = view.slice().buffer;
    this.worker.postMessage({ copy }, [copy]);
    // A network faster than hashing must not queue up a second copy of the model.
    if (this.sent - this.done > HASH_BACKLOG_BYTES) await this.until(() => this.sent - this.done <= HASH_BACKLOG_BYTES);
  }

  /** Hex digest, or null if hashing failed (the download itself is fine then). */
  async hex(heap) {
    if (this.inline) return (await this.inline).hex();
    if (this.failed) return null;
    await this.flush(heap);
    this.worker.postMessage('digest');
    await this.until(() => this.result);
    this.close();
    // A batch the worker could not receive would leave a digest of less than the file.
    return this.failed || this.done !== this.sent ? null : this.result;
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
export class HeapSink {
  constructor(engineReady, { knownSize, hash, hashModule = null, verify = false, openWriter, progress }) {
    this.engineReady = engineReady;  // the engine may still be starting while the first bytes arrive
    this.engine = null;
    this.knownSize = knownSize;   // from Content-Length or Blob.size; null if unknown
    this.hash = hash ? new ParallelSha256(hashModule) : null;
    this.verify = verify;         // keep hashing without a cache file: the caller checks the digest
    this.openWriter = openWriter; // async (size) => CacheWriter | null
    this.progress = progress;
    this.head = new Uint8Array(BIT2_PREFIX_BYTES);
    this.headLength = 0;
    this.buf = null;
    this.size = 0;
    this.loaded = 0;
    this.writer = null;
    this.header = null;
    // Where a download's time goes (model.info.download.timings).
    this.timings = { engineWaitMs: 0, heapCopyMs: 0, cacheWriteMs: 0, hashWaitMs: 0 };
  }

  /** `fromCacheFile`: the bytes were read back from the cache file, which already holds them. */
  async push(chunk, fromCacheFile = false) {
    if (!this.buf) {
      const take = Math.min(BIT2_PREFIX_BYTES - this.headLength, chunk.length);
      this.head.set(chunk.subarray(0, take), this.headLength);
      this.headLength += take;
      if (this.headLength < BIT2_PREFIX_BYTES) return;
      await this.allocate();
      await this.write(this.head.slice(), fromCacheFile);
      chunk = chunk.subarray(take);
      if (chunk.length === 0) return;
    }
    await this.write(chunk, fromCacheFile);
  }

  async allocate() {
    this.header = parseBit2Prefix(this.head);
    const size = this.header.fileBytes;
    const t0 = performance.now();
    this.engine = await this.engineReady;
    this.timings.engineWaitMs = performance.now() - t0;
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
    this.engine.startPrefault(this.buf);
    if (this.openWriter) this.writer = await this.openWriter(size);
    if (this.hash && !this.writer && !this.verify) {  // not caching after all: the hash has no use
      this.hash.close();
      this.hash = null;
    }
  }

  async write(chunk, fromCacheFile) {
    if (this.loaded + chunk.length > this.size) {
      throw new BitMambaError('corrupt_model',
        `The model file is longer than the ${this.size} bytes its header describes.`, { expected: this.size });
    }
    const at = this.loaded;
    this.loaded += chunk.length;
    const t0 = performance.now();
    // A fresh view each time: any call into wasm may have grown (replaced) the heap.
    const heap = this.engine.heapView(this.buf);
    heap.set(chunk, at);
    const t1 = performance.now();
    if (this.writer && !fromCacheFile) {
      this.writer.write(chunk, at);
      this.writer.recordProgress(this.loaded);
    }
    const t2 = performance.now();
    this.progress(this.loaded, this.size);
    if (this.hash) await this.hash.update(heap, at, chunk.length);
    this.timings.heapCopyMs += t1 - t0;
    this.timings.cacheWriteMs += t2 - t1;
    this.timings.hashWaitMs += performance.now() - t2;
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
    this.engine.finishPrefault();
    this.progress(this.loaded, this.size, true);
    const t0 = performance.now();
    const hex = this.hash ? await this.hash.hex(this.engine.heapView(this.buf)) : null;
    this.timings.hashWaitMs += performance.now() - t0;
    return hex;
  }

  /** Frees the heap and the hash but keeps the cache file, with its progress noted, for a later load to resume. */
  async keepPartial() {
    if (this.hash) this.hash.close();
    if (this.writer) await this.writer.keep(this.loaded);
    if (this.buf) this.engine.freeBuffer(this.buf);
    this.buf = null;
  }

  async abandon() {
    if (this.hash) this.hash.close();
    if (this.writer) await this.writer.discard();
    if (this.buf) this.engine.freeBuffer(this.buf);
    this.buf = null;
  }
}

/** A body that broke off (or a request that failed) after the download had started. */
export class ConnectionDropped extends Error {
  constructor(cause) {
    super(cause && cause.message ? cause.message : String(cause));
    this.name = 'ConnectionDropped';
  }
}

// The BYOB buffer's size: one read waits for at most this much of the body.
const READ_BUFFER_BYTES = 1 << 20;
// A read that brings less than this is gathered with the next ones into one
// value of READ_BUFFER_BYTES (see chunkReader).
const DIRECT_READ_BYTES = 256 << 10;

/**
 * A reader of `stream` whose read() resolves {done, value} like a default
 * reader's. Where the stream is a byte stream (a fetch body in Chromium and
 * Firefox) it reads into one buffer of its own, again and again, instead of
 * taking a new chunk the browser allocates each time: in Chromium that read
 * a 246 MiB body 1.5x as fast. Each value is only valid until the next
 * read(), which takes its buffer back.
 *
 * Small reads are gathered: Firefox hands a body over 64 KiB at a time, and
 * writing each piece to the cache file took it 0.9 ms, 3.5-5 s for the
 * 246 MiB file. They are copied into a second buffer, which is never handed
 * to the stream, so a read that fails loses none of the bytes before it:
 * they come first, the error on the next read().
 */
export function chunkReader(stream) {
  let byob;
  try {
    byob = stream.getReader({ mode: 'byob' });
  } catch {
    return Object.assign(stream.getReader(), { mode: 'default' });  // not a byte stream (a TypeError): the browser's own chunks
  }
  let buffer = new ArrayBuffer(READ_BUFFER_BYTES);
  const gathered = new Uint8Array(READ_BUFFER_BYTES);
  let failure = null;
  return {
    mode: 'byob',
    async read() {
      if (failure) throw failure.error;
      for (let filled = 0; ;) {
        let step;
        try {
          step = await byob.read(new Uint8Array(buffer, 0, Math.min(buffer.byteLength, gathered.length - filled)));
        } catch (error) {
          if (filled === 0) throw error;
          failure = { error };
          return { done: false, value: gathered.subarray(0, filled) };
        }
        if (step.value) buffer = step.value.buffer;  // the same memory, handed back
        if (step.done) return filled > 0 ? { done: false, value: gathered.subarray(0, filled) } : step;
        if (filled === 0 && step.value.length >= DIRECT_READ_BYTES) return step;
        gathered.set(step.value, filled);
        filled += step.value.length;
        if (filled === gathered.length) return { done: false, value: gathered };
      }
    },
  };
}

/**
 * Feeds a stream's chunks to the sink until it ends. A failed read is
 * ConnectionDropped (the caller may resume); the sink's own errors pass.
 * `onChunk(n, ms)` counts what arrived and how long the read waited for it.
 * The sink must be done with a chunk when its push() resolves (see chunkReader).
 * Resolves with the reader's mode: 'byob' or 'default'.
 */
export async function drain(stream, sink, signal, onChunk = () => {}) {
  const reader = chunkReader(stream);
  for (;;) {
    if (signal.aborted) throw new BitMambaError('aborted', 'Loading was cancelled.');
    let step;
    const t0 = performance.now();
    try {
      step = await reader.read();
    } catch (e) {
      if (signal.aborted || (e && e.name === 'AbortError')) throw new BitMambaError('aborted', 'Loading was cancelled.');
      throw new ConnectionDropped(e);
    }
    if (step.done) return reader.mode;
    onChunk(step.value.length, performance.now() - t0);
    await sink.push(step.value);
  }
}
