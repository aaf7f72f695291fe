// Getting model bytes into the wasm heap: from the network (with the cache),
// from the cache, from a File/Blob, or from an ArrayBuffer. Runs in the worker.
//
// Every source streams into one buffer in the wasm heap (heap-sink.js); a
// download resumes after a dropped connection (download.js). When
// Content-Length is present it must agree with the BIT2 header (unless the
// body is content-encoded, where it counts compressed bytes).

import { BitMambaError, asBitMambaError } from './errors.js';
import { parseBit2Prefix, BIT2_PREFIX_BYTES } from './bit2.js';
import { HeapSink, drain, formatMiB, throttled } from './heap-sink.js';
import { DEFAULT_RETRIES, downloadModel } from './download.js';
import { lookupCached, readCached, removeCached, probeCache } from './model-cache.js';

/**
 * Result of every loader: the heap buffer (owned by the caller now) and what
 * is known about where it came from. `commit()` writes the cache entry and
 * must be called only after the engine accepted the bytes; `discard()` undoes.
 * @typedef {{buf: object, bytes: number, source: string, sha256: string|null,
 *   cache: {status: string, reason?: string, message?: string},
 *   commit: () => Promise<void>, discard: () => Promise<void>}} Loaded
 */

/** @returns {Promise<Loaded>} */
export async function loadFromUrl(engineReady, url, { cache, signal, onProgress, retries = DEFAULT_RETRIES, hashModule = null }) {
  if (!Number.isInteger(retries) || retries < 0 || retries > 100) {
    throw new BitMambaError('invalid_argument', `retries must be an integer from 0 to 100, not ${retries}.`);
  }
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

  return downloadModel(engineReady, absolute, { useCache, uncached: cacheState, signal, onProgress, retries, hashModule });
}

async function loadFromCache(engine, entry, signal, onProgress) {
  const progress = throttled(onProgress, 'cache');
  let buf;
  try {
    buf = engine.allocBuffer(entry.size);
  } catch (e) {
    throw new BitMambaError('quota', `Not enough memory for this model (${formatMiB(entry.size)}).`, { size: entry.size });
  }
  engine.startPrefault(buf);
  try {
    progress(0, entry.size, true);
    await readCached(entry, () => engine.heapView(buf), (loaded) => progress(loaded, entry.size), signal);
    engine.finishPrefault();
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
    await drain(blob.stream(), sink, signal);
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
