// The model cache, in the Origin Private File System (OPFS).
//
// Why OPFS rather than Cache Storage: in the worker, a FileSystemSyncAccessHandle
// writes each network chunk at its offset while the download runs (no
// Response to build and no second pass over 246 MiB after it), and on a
// later visit read() fills the wasm heap through one 8 MiB buffer, even
// when the heap is a SharedArrayBuffer. A half-written file is
// invisible until its index entry exists, which gives an atomic commit.
// Both count against the same origin quota (navigator.storage.estimate()).
//
// Layout, in the directory `bitmamba-models`:
//   <sha256>-<size>.bin     the model bytes, named by their content
//   url-<sha256(url)>.json  the index entry {url, size, sha256, file, storedAt, etag}
//   partial-<sha256(url)>.bin   a download in progress, and .json beside it:
//                           {url, size, loaded, validator}, for resuming after a
//                           reload; removed on failure, or when another URL's
//                           download finds it older than 10 minutes
//   partial-<random>.bin    the same URL downloading in a second tab
// An entry is keyed by URL + size + SHA-256: the index file is written only
// after the download was complete, its size matched the BIT2 header, it was
// hashed and the engine accepted it. Lookups check the size again.

import { sha256Text } from './sha256.js';

const DIR = 'bitmamba-models';
const READ_CHUNK = 8 << 20;
const STALE_PARTIAL_MS = 10 * 60 * 1000;

export function cacheSupported() {
  return typeof navigator !== 'undefined' && !!navigator.storage && typeof navigator.storage.getDirectory === 'function';
}

let probed = null;

/**
 * Whether this worker can keep models: {ok, reason}. Writing the cache needs
 * a sync access handle on an OPFS file and navigator.storage.estimate() for
 * the quota; a browser may list the methods and still refuse (WebKitGTK's
 * MiniBrowser answers UnknownError), so a probe file is opened for real.
 */
export function probeCache() {
  probed ??= (async () => {
    if (!cacheSupported()) return { ok: false, reason: 'this browser has no Origin Private File System' };
    if (typeof navigator.storage.estimate !== 'function') return { ok: false, reason: 'this browser has no navigator.storage.estimate' };
    const name = `probe-${crypto.randomUUID()}`;
    let dir = null;
    try {
      dir = await modelDir(true);
      const handle = await dir.getFileHandle(name, { create: true });
      if (typeof handle.createSyncAccessHandle !== 'function') throw new Error('no sync access handles');
      (await handle.createSyncAccessHandle()).close();
      await navigator.storage.estimate();
      return { ok: true, reason: 'OPFS sync access handles work' };
    } catch (e) {
      return { ok: false, reason: `its storage refused a sync access handle (${e && e.name ? e.name : 'Error'}: ${e && e.message ? e.message : e})` };
    } finally {
      await dir?.removeEntry(name).catch(() => {});
    }
  })();
  return probed;
}

async function modelDir(create) {
  const root = await navigator.storage.getDirectory();
  try {
    return await root.getDirectoryHandle(DIR, { create });
  } catch (e) {
    if (!create && e.name === 'NotFoundError') return null;
    throw e;
  }
}

const indexName = (url) => `url-${sha256Text(url).slice(0, 40)}.json`;

async function readJson(dir, name) {
  try {
    const file = await (await dir.getFileHandle(name)).getFile();
    return JSON.parse(await file.text());
  } catch {
    return null;
  }
}

/** Index entries with their data file present and of the right size. */
export async function listCached() {
  if (!cacheSupported()) return [];
  const dir = await modelDir(false);
  if (!dir) return [];
  const out = [];
  for await (const [name, handle] of dir.entries()) {
    if (handle.kind !== 'file' || !name.startsWith('url-')) continue;
    const entry = await readJson(dir, name);
    if (entry && (await dataFileSize(dir, entry.file)) === entry.size) out.push(entry);
  }
  return out;
}

async function dataFileSize(dir, name) {
  try {
    return (await (await dir.getFileHandle(name)).getFile()).size;
  } catch {
    return -1;
  }
}

/** The entry for `url`, or null. */
export async function lookupCached(url) {
  if (!cacheSupported()) return null;
  const dir = await modelDir(false);
  if (!dir) return null;
  const entry = await readJson(dir, indexName(url));
  if (!entry || entry.url !== url) return null;
  if ((await dataFileSize(dir, entry.file)) !== entry.size) {
    await removeCached(url);
    return null;
  }
  return entry;
}

// One turn of the event loop, so that queued messages (an abort) run. Not
// setTimeout(0): nested timers are clamped to 4 ms, 30 of them per load.
function yieldToMessages() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/**
 * Reads a cached model into memory the caller owns.
 * @param {object} entry from lookupCached
 * @param {() => Uint8Array} target a fresh view of the destination (entry.size bytes)
 * @param {(loaded: number) => void} onProgress
 * @param {AbortSignal} signal
 */
export async function readCached(entry, target, onProgress, signal) {
  const dir = await modelDir(false);
  const handle = await dir.getFileHandle(entry.file);
  let sync = null;
  try {
    sync = await handle.createSyncAccessHandle();
  } catch {
    sync = null;  // another tab holds the lock: fall back to a stream
  }
  if (sync) {
    // Through a buffer of our own rather than straight into the heap: pages
    // of fresh wasm memory that the OS filled in read() cost as much again
    // when the engine first touches them (its prepare step ran 5 to 10x
    // slower, about as long as the read), while pages a copy in JS filled do not.
    const bounce = new Uint8Array(Math.min(READ_CHUNK, entry.size));
    try {
      for (let at = 0; at < entry.size; at += READ_CHUNK) {
        signal.throwIfAborted();
        const n = Math.min(READ_CHUNK, entry.size - at);
        const got = sync.read(bounce.subarray(0, n), { at });
        if (got !== n) throw new Error(`cached file ended at byte ${at + got} of ${entry.size}`);
        target().set(bounce.subarray(0, n), at);
        onProgress(at + n);
        await yieldToMessages();  // let an abort message in
      }
    } finally {
      sync.close();
    }
    return;
  }
  const reader = (await handle.getFile()).stream().getReader();
  let at = 0;
  for (;;) {
    signal.throwIfAborted();
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.length > entry.size) throw new Error('cached file is longer than its index entry');
    target().set(value, at);
    at += value.length;
    onProgress(at);
  }
  if (at !== entry.size) throw new Error(`cached file ended at byte ${at} of ${entry.size}`);
}

// Resuming waits up to 3 s for the lock on a partial file: the worker of a
// reloaded page still holds it until that worker is gone, a moment after
// the reload.
const LOCK_WAIT_MS = 100;
const LOCK_ATTEMPTS = 30;
// How often the progress file is brought up to date during a download.
const RECORD_INTERVAL_MS = 250;

const partialBase = (url) => `partial-${sha256Text(url).slice(0, 40)}`;

async function openSync(dir, name, { create = false, wait = false } = {}) {
  const handle = await dir.getFileHandle(name, { create });
  for (let attempt = 1; ; attempt++) {
    try {
      return { handle, sync: await handle.createSyncAccessHandle() };
    } catch (e) {
      if (!wait || e.name !== 'NoModificationAllowedError' || attempt === LOCK_ATTEMPTS) throw e;
      await new Promise((resolve) => setTimeout(resolve, LOCK_WAIT_MS));
    }
  }
}

/**
 * A cache file written chunk by chunk during a download. write() never
 * throws: a quota error (or any storage error) turns the writer off and
 * `skipped` says why, so the download itself goes on.
 *
 * The file is named after the URL (partial-<hash of url>.bin) and a progress
 * file beside it (.json) says how many bytes are written and which server
 * validator (ETag or Last-Modified) they belong to, so that a load after a
 * page reload resumes it (CacheWriter.resume) instead of starting over.
 */
export class CacheWriter {
  static async open(size, url) {
    const dir = await modelDir(true);
    const base = partialBase(url);
    await removeStalePartials(dir);
    let opened;
    let progress = null;
    try {
      opened = await openSync(dir, `${base}.bin`, { create: true });
      progress = await openSync(dir, `${base}.json`, { create: true });
    } catch (e) {
      if (e.name !== 'NoModificationAllowedError') throw e;
      // Another tab downloads the same URL: write a file of our own, which no reload resumes.
      opened?.sync.close();
      const name = `partial-${crypto.randomUUID()}.bin`;
      opened = await openSync(dir, name, { create: true });
    }
    const writer = new CacheWriter(dir, opened.handle.name, opened.handle, opened.sync, progress, url, size);
    try {
      opened.sync.truncate(0);
      opened.sync.truncate(size);  // reserve the space now: a quota error comes before the download
      progress?.sync.truncate(0);
    } catch (e) {
      await writer.discard();
      writer.fail(e);
    }
    return writer;
  }

  /**
   * The partial file a reloaded page left for `url`, or null. The writer's
   * `resumable` is {size, loaded, validator}: `loaded` bytes are on disk
   * (readBack gives them) and came with that validator.
   */
  static async resume(url) {
    if (!cacheSupported()) return null;
    const dir = await modelDir(false);
    if (!dir) return null;
    const base = partialBase(url);
    let data = null;
    let progress = null;
    try {
      progress = await openSync(dir, `${base}.json`, { wait: true });
      data = await openSync(dir, `${base}.bin`, { wait: true });
    } catch {
      progress?.sync.close();
      return null;  // nothing left, or another tab is downloading it now
    }
    const writer = new CacheWriter(dir, data.handle.name, data.handle, data.sync, progress, url, null);
    const state = writer.readProgress();
    if (!state || state.url !== url || !state.validator || !(state.loaded > 0) ||
        state.loaded > state.size || data.sync.getSize() !== state.size) {
      await writer.discard();
      return null;
    }
    writer.size = state.size;
    writer.validator = state.validator;
    writer.resumable = { size: state.size, loaded: state.loaded, validator: state.validator };
    return writer;
  }

  constructor(dir, name, handle, sync, progress, url, size) {
    this.dir = dir;
    this.name = name;
    this.handle = handle;
    this.sync = sync;
    this.progressFile = progress;  // {handle, sync} of the .json, or null when not resumable
    this.url = url;
    this.size = size;
    this.validator = null;         // the server's ETag or Last-Modified for these bytes
    this.recordedAt = 0;
    this.trailingNote = null;  // timer of the note after the last chunk
    this.unrecorded = 0;
    this.resumable = null;
    this.skipped = null;  // null while writing; {reason, message} once given up
  }

  fail(e) {
    const reason = e && e.name === 'QuotaExceededError' ? 'quota' : 'storage_error';
    this.skipped = { reason, message: e && e.message ? e.message : String(e) };
  }

  write(chunk, at) {
    if (this.skipped) return;
    try {
      let done = 0;
      while (done < chunk.length) done += this.sync.write(chunk.subarray(done), { at: at + done });
    } catch (e) {
      this.fail(e);
      this.discard();
    }
  }

  /** Copies `view.length` bytes from `at` of the file into `view`; returns how many it read. */
  readBack(view, at) {
    return this.sync.read(view, { at });
  }

  /**
   * Notes that the first `loaded` bytes are written, at most every 250 ms,
   * and once more 250 ms after the last call (a stalled download is noted
   * up to its last byte). The data is flushed first, so the progress file
   * never claims bytes the disk may not have. Bytes written after the last
   * note are fetched again after a reload.
   */
  recordProgress(loaded, force = false) {
    if (this.skipped || !this.progressFile || !this.validator) return;
    const now = performance.now();
    if (!force && now - this.recordedAt < RECORD_INTERVAL_MS) {
      this.unrecorded = loaded;
      this.trailingNote ??= setTimeout(() => {
        this.trailingNote = null;
        this.recordProgress(this.unrecorded, true);
      }, RECORD_INTERVAL_MS);
      return;
    }
    this.recordedAt = now;
    try {
      this.sync.flush();
      const text = new TextEncoder().encode(JSON.stringify({ url: this.url, size: this.size, loaded, validator: this.validator }));
      const p = this.progressFile.sync;
      p.truncate(0);
      p.write(text, { at: 0 });
      p.flush();
    } catch {
      // Only resuming after a reload needs it; the download goes on.
    }
  }

  readProgress() {
    try {
      const p = this.progressFile.sync;
      const bytes = new Uint8Array(p.getSize());
      p.read(bytes, { at: 0 });
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return null;
    }
  }

  async closeProgressFile() {
    clearTimeout(this.trailingNote);
    this.trailingNote = null;
    if (!this.progressFile) return;
    try {
      this.progressFile.sync.close();
    } catch { /* already closed */ }
    await this.dir.removeEntry(this.progressFile.handle.name).catch(() => {});
    this.progressFile = null;
  }

  /** Closes the files, leaving them for CacheWriter.resume; discards them when they could not be resumed. */
  async keep(loaded) {
    if (this.skipped || !this.progressFile || !this.validator || loaded === 0) return this.discard();
    this.recordProgress(loaded, true);
    clearTimeout(this.trailingNote);
    try {
      this.progressFile.sync.close();
      this.sync.close();
    } catch { /* already closed */ }
    this.progressFile = null;
    this.sync = null;
    this.name = null;
  }

  /** Makes the entry visible; false (and nothing left behind) when it could not. */
  async commit(url, size, sha256, extra = {}) {
    if (this.skipped) return false;
    try {
      await this.closeProgressFile();
      this.sync.flush();
      this.sync.close();
      this.sync = null;
      let file = this.name;
      const finalName = `${sha256}-${size}.bin`;
      if (typeof this.handle.move === 'function') {
        await this.dir.removeEntry(finalName).catch(() => {});
        await this.handle.move(finalName);
        file = finalName;
        this.name = finalName;
      }
      const entry = { url, size, sha256, file, storedAt: new Date().toISOString(), ...extra };
      const index = await this.dir.getFileHandle(indexName(url), { create: true });
      const writable = await index.createWritable();
      await writable.write(JSON.stringify(entry));
      await writable.close();
      this.name = null;
      return true;
    } catch (e) {
      this.fail(e);
      await this.discard();
      return false;
    }
  }

  async discard() {
    await this.closeProgressFile();
    try {
      if (this.sync) this.sync.close();
    } catch { /* already closed */ }
    this.sync = null;
    if (this.name) await this.dir.removeEntry(this.name).catch(() => {});
    this.name = null;
    if (!this.skipped) this.skipped = { reason: 'discarded', message: 'download not completed' };
  }
}

// A partial file is left when a page was closed or reloaded mid-download;
// the next load of its URL resumes it. One that is still being written is
// locked by its sync handle, so removing it fails quietly.
async function removeStalePartials(dir) {
  const now = Date.now();
  for await (const [name, handle] of dir.entries()) {
    if (handle.kind !== 'file' || !name.startsWith('partial-')) continue;
    try {
      const file = await handle.getFile();
      if (now - file.lastModified > STALE_PARTIAL_MS) await dir.removeEntry(name);
    } catch { /* in use */ }
  }
}

/** Removes the entry for `url` and its data file unless another entry shares it. */
export async function removeCached(url) {
  if (!cacheSupported()) return;
  const dir = await modelDir(false);
  if (!dir) return;
  const entry = await readJson(dir, indexName(url));
  await dir.removeEntry(indexName(url)).catch(() => {});
  if (!entry) return;
  for (const other of await listCached()) if (other.file === entry.file) return;
  await dir.removeEntry(entry.file).catch(() => {});
}

/** Removes every cached model; a file still open in another tab stays until it closes. */
export async function clearCache() {
  if (!cacheSupported()) return;
  const root = await navigator.storage.getDirectory();
  try {
    await root.removeEntry(DIR, { recursive: true });
  } catch (e) {
    if (e.name === 'NotFoundError') return;
    const dir = await modelDir(false);
    for await (const [name] of dir.entries()) await dir.removeEntry(name).catch(() => {});
  }
}

/** Whether `bytes` more fit in the origin's quota, per navigator.storage.estimate(). */
export async function quotaAllows(bytes) {
  if (!navigator.storage || typeof navigator.storage.estimate !== 'function') return { ok: true };
  const { quota = Infinity, usage = 0 } = await navigator.storage.estimate();
  const free = quota - usage;
  // Keep a margin: other data of the origin grows too.
  return { ok: free > bytes + (16 << 20), free, quota, usage };
}
