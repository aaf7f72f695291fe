// A model download that survives a dropped connection. Runs in the worker.
//
// When the body breaks off, the download asks again for the bytes it lacks
// (`Range: bytes=N-`) with `If-Range` set to the first answer's ETag (or its
// Last-Modified when there is no strong ETag). A 206 continues where the
// bytes stopped: the heap buffer, the cache file and the SHA-256 (whose
// state lives on in the hash worker) keep what they have. A 200 means the
// server ignores ranges or the file changed: everything starts over from
// this answer. Each retry waits (backoff), and a download gives up with
// `network` after `retries` attempts in a row that got no further.
//
// When caching, the cache file and a progress file name the URL
// (model-cache.js), so a load after a page reload reads the bytes already on
// disk back into the heap (hashing them again) and asks for the rest.

import { BitMambaError } from './errors.js';
import { BIT2_PREFIX_BYTES } from './bit2.js';
import { HeapSink, ConnectionDropped, drain, formatMiB, throttled } from './heap-sink.js';
import { CacheWriter, quotaAllows } from './model-cache.js';

export const DEFAULT_RETRIES = 5;
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 4000;
const READ_BACK_CHUNK = 4 << 20;

/** Wait before retry number `failure` (1, 2, ...): 0.25 s, doubling, at most 4 s. */
export function backoffMs(failure) {
  return Math.min(BACKOFF_FIRST_MS * 2 ** (failure - 1), BACKOFF_MAX_MS);
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      if (signal.aborted) reject(new BitMambaError('aborted', 'Loading was cancelled.'));
      else resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/** The validator If-Range may carry: a strong ETag, else Last-Modified, else null. */
function validatorOf(response) {
  const etag = response.headers.get('etag');
  if (etag && !etag.startsWith('W/')) return etag;
  return response.headers.get('last-modified');
}

// "bytes 100-199/200" → {start: 100, total: 200}; null when absent (a
// cross-origin server may not expose it) or not of that form.
/**
 * The SHA-256 the server publishes for the file, if any: Hugging Face sends
 * an LFS file's SHA-256 as its ETag, and as X-Linked-Etag on the redirect.
 */
export function publishedSha256(response) {
  for (const name of ['x-linked-etag', 'etag']) {
    const value = (response.headers.get(name) ?? '').replace(/^W\//, '').replace(/"/g, '').toLowerCase();
    if (/^[0-9a-f]{64}$/.test(value)) return { sha256: value, header: name };
  }
  return null;
}

function contentRange(response) {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
  return m ? { start: Number(m[1]), total: m[2] === '*' ? null : Number(m[2]) } : null;
}

class Download {
  constructor(engineReady, url, { useCache, uncached, signal, onProgress, retries, hashModule }) {
    this.engineReady = engineReady;
    this.hashModule = hashModule;  // a promise of the compiled wasm SHA-256 (sha256-wasm.js), or of null
    this.url = url;
    this.useCache = useCache;
    this.signal = signal;
    this.retries = retries;
    this.cacheState = useCache ? { status: 'pending' } : uncached;
    const progress = throttled(onProgress, 'download');
    this.progress = (loaded, total, force) => progress(loaded, total || this.lengthHint, force);
    this.sink = null;
    this.validator = null;   // what the bytes in the sink were sent with
    this.lengthHint = null;  // Content-Length of the last full answer, for progress before the header
    this.fullResponse = null;
    this.published = null;   // {sha256, header} the server gave for the file, to check the download against
    this.started = false;    // a first answer arrived: later failures are drops, not an unreachable URL
    this.stats = { requests: 0, resumes: 0, restarts: 0, retries: 0, receivedBytes: 0, readBackBytes: 0 };
    // The body's chunks, the time spent awaiting them, and how they were read (chunkReader).
    this.network = { chunks: 0, waitMs: 0, reader: null };
  }

  newSink(knownSize, resumed = null) {
    const caching = this.cacheState.status === 'pending';
    const openWriter = !caching ? null : async (size) => {
      if (resumed && resumed.size === size) return resumed;
      if (resumed) await resumed.discard();
      resumed = null;
      return this.openWriter(size);
    };
    const verify = this.published !== null;  // a published hash is checked even when nothing is cached
    return new HeapSink(this.engineReady, { knownSize, hash: caching || verify, hashModule: this.hashModule, verify, openWriter, progress: this.progress });
  }

  async openWriter(size) {
    const room = await quotaAllows(size).catch(() => ({ ok: true }));
    if (!room.ok) {
      this.cacheState = { status: 'skipped', reason: 'quota', free: room.free, message: `only ${formatMiB(room.free)} of storage free` };
      return null;
    }
    try {
      const writer = await CacheWriter.open(size, this.url);
      writer.validator = this.validator;
      return writer;
    } catch (e) {
      this.cacheState = { status: 'skipped', reason: e && e.name === 'QuotaExceededError' ? 'quota' : 'storage_error', message: String(e && e.message || e) };
      return null;
    }
  }

  /** Reads back the partial file a reloaded page left, if any; the download then asks for the rest. */
  async resumePartial() {
    const writer = await CacheWriter.resume(this.url).catch(() => null);
    if (!writer) return;
    const { loaded, validator } = writer.resumable;
    if (loaded < BIT2_PREFIX_BYTES) {  // the header decides the buffer and the writer: not worth it
      await writer.discard();
      return;
    }
    this.sink = this.newSink(null, writer);
    try {
      const buffer = new Uint8Array(Math.min(READ_BACK_CHUNK, loaded));
      for (let at = 0; at < loaded;) {
        const chunk = buffer.subarray(0, Math.min(READ_BACK_CHUNK, loaded - at));
        if (writer.readBack(chunk, at) !== chunk.length) throw new Error('the partial file is shorter than its progress file says');
        await this.sink.push(chunk, true);
        at += chunk.length;
      }
    } catch (e) {
      await this.sink.abandon();  // removes the partial file too
      this.sink = null;
      if (e instanceof BitMambaError && e.code === 'quota') throw e;
      return;
    }
    this.validator = validator;
    this.stats.readBackBytes = loaded;
  }

  request(from) {
    const headers = from > 0 ? { Range: `bytes=${from}-`, 'If-Range': this.validator } : {};
    this.stats.requests++;
    // no-store: the cache keeps the one copy; the HTTP cache would keep a second.
    return fetch(this.url, { signal: this.signal, cache: this.useCache ? 'no-store' : 'default', credentials: 'same-origin', headers });
  }

  /** Whether a 206 continues the sink's bytes exactly. */
  continues(response, from) {
    const shown = validatorOf(response);
    if (shown !== null && shown !== this.validator) return false;
    const size = this.sink.size || null;
    const range = contentRange(response);
    if (range) return range.start === from && (size === null || range.total === null || range.total === size);
    // A cross-origin server may hide Content-Range; Content-Length must then fit.
    const length = response.headers.get('content-length');
    return length === null || size === null || Number(length) === size - from;
  }

  /** The answer to read from, or null when it cannot continue the bytes held (ask again from 0). */
  async fetchFrom(from) {
    let response;
    try {
      response = await this.request(from);
    } catch (e) {
      if (this.signal.aborted) throw new BitMambaError('aborted', 'Loading was cancelled.');
      if (this.started) throw new ConnectionDropped(e);
      throw new BitMambaError('network',
        `Could not download ${this.url}: ${e && e.message ? e.message : e}. Check the connection (and, for another site, that it allows cross-origin requests).`);
    }
    this.started = true;
    if (from > 0 && (response.status === 206 || response.status === 416)) {
      if (response.status === 206 && this.continues(response, from)) {
        this.stats.resumes++;
        this.published ??= publishedSha256(response);
        return response;
      }
      response.body?.cancel().catch(() => {});
      return null;
    }
    if (!response.ok || response.status === 206) {
      response.body?.cancel().catch(() => {});
      throw new BitMambaError('http_status',
        `The server answered ${response.status}${response.statusText ? ' ' + response.statusText : ''} for ${this.url}.`,
        { status: response.status });
    }
    if (!response.body) throw new BitMambaError('unsupported_browser', 'This browser cannot stream a download (no Response.body).');
    await this.startOver(response);
    return response;
  }

  // A full answer (200): whatever the sink held is dropped, and this answer fills a new one.
  async startOver(response) {
    if (this.sink) {
      if (this.sink.loaded > 0) this.stats.restarts++;
      await this.sink.abandon();
    }
    this.fullResponse = response;
    this.validator = validatorOf(response);
    this.published = publishedSha256(response);
    // Content-Length counts encoded bytes when the body is compressed, and a
    // cross-origin response hides Content-Encoding unless the server exposes
    // it: there the length only seeds the progress total, it is not checked.
    const encoding = response.headers.get('content-encoding');
    const lengthHeader = response.headers.get('content-length');
    this.lengthHint = lengthHeader !== null ? Number(lengthHeader) : null;
    const identity = encoding === 'identity' || (encoding === null && response.type === 'basic');
    if (this.cacheState.status === 'pending' && this.lengthHint != null) {
      const room = await quotaAllows(this.lengthHint).catch(() => ({ ok: true }));
      if (!room.ok) this.cacheState = { status: 'skipped', reason: 'quota', free: room.free, message: `only ${formatMiB(room.free)} of storage free` };
    }
    this.sink = this.newSink(identity ? this.lengthHint : null);
  }

  /** Fetches until the sink has every byte; retries drops with backoff. */
  async run() {
    this.progress(0, null, true);
    let failures = 0;
    let best = this.sink ? this.sink.loaded : 0;
    for (;;) {
      const from = this.sink && this.validator ? this.sink.loaded : 0;
      try {
        const response = await this.fetchFrom(from);
        if (!response) {
          this.validator = null;  // the next request is a plain one, from the start
          continue;
        }
        this.network.reader = await drain(response.body, this.sink, this.signal, (n, ms) => {
          this.stats.receivedBytes += n;
          this.network.chunks++;
          this.network.waitMs += ms;
        });
        return;
      } catch (e) {
        if (!(e instanceof ConnectionDropped)) throw e;
        const loaded = this.sink ? this.sink.loaded : 0;
        if (loaded > best) {
          best = loaded;
          failures = 0;
        }
        if (++failures > this.retries) throw this.gaveUp(e, loaded);
        this.stats.retries++;
        await pause(backoffMs(failures), this.signal);
      }
    }
  }

  gaveUp(e, loaded) {
    const total = this.sink && this.sink.size ? this.sink.size : null;
    const tries = this.retries === 1 ? '1 retry' : `${this.retries} retries`;
    return new BitMambaError('network',
      `The download of ${this.url} broke off after ${formatMiB(loaded)}${total ? ' of ' + formatMiB(total) : ''}` +
      ` and ${tries} got no further (${e.message.replace(/\.+$/, '')}).`,
      { loaded, total, retries: this.retries });
  }
}

// A file whose SHA-256 is not the one its server published was damaged on
// the way (or the server is wrong): it is refused, and nothing is kept.
function checkPublished(published, sha256, url) {
  if (!published || sha256 === null || published.sha256 === sha256) return;
  throw new BitMambaError('corrupt_model',
    `The download of ${url} does not match the SHA-256 its server published (${published.header} ${published.sha256.slice(0, 12)}…; ` +
    `the bytes give ${sha256.slice(0, 12)}…). It was damaged on the way; nothing was stored. Try again.`,
    { published: published.sha256, sha256 });
}

/**
 * Downloads `url` into the heap, resuming after drops (and after a page
 * reload, from the cache's partial file). Returns a Loaded (loader.js).
 */
export async function downloadModel(engineReady, url, options) {
  const d = new Download(engineReady, url, options);
  let sha256;
  try {
    if (options.useCache) await d.resumePartial();
    await d.run();
    sha256 = await d.sink.finish();
    checkPublished(d.published, sha256, url);
  } catch (e) {
    // A validated download that ran out of retries keeps its partial file for the next load().
    if (d.sink && e instanceof BitMambaError && e.code === 'network') await d.sink.keepPartial();
    else await d.sink?.abandon();
    throw e;
  }
  const { sink } = d;
  const writer = sink.writer;
  if (writer && !sha256) await writer.discard();  // hashing failed: no key to store it under
  if (writer && writer.skipped) d.cacheState = { status: 'skipped', ...writer.skipped };
  return {
    buf: sink.buf,
    bytes: sink.size,
    source: 'network',
    url,
    sha256,
    published: d.published && { ...d.published, matched: sha256 !== null },
    download: { ...d.stats, timings: { chunks: d.network.chunks, reader: d.network.reader, networkWaitMs: d.network.waitMs, ...sink.timings } },
    get cache() { return d.cacheState; },
    async commit() {
      if (!writer || writer.skipped) {
        if (writer && writer.skipped) d.cacheState = { status: 'skipped', ...writer.skipped };
        return;
      }
      const etag = d.fullResponse ? d.fullResponse.headers.get('etag') : (writer.validator.startsWith('"') ? writer.validator : null);
      const ok = await writer.commit(url, sink.size, sha256, { etag });
      d.cacheState = ok ? { status: 'stored' } : { status: 'skipped', ...writer.skipped };
    },
    async discard() {
      if (writer) await writer.discard();
    },
  };
}
