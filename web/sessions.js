// Saved sessions of the demo page: the text, the model's state snapshot,
// the sampling settings and the model's identity, kept in this origin's
// IndexedDB and exported as a JSON file. A session belongs to one model file
// (its SHA-256); restoring it into another model is refused.

const DB_NAME = 'bitmamba-sessions';
const STORE = 'sessions';
export const SESSION_FORMAT = 'bitmamba-session';
export const SESSION_VERSION = 1;

/** A session that cannot be used: a bad or foreign file, or another model's. */
export class SessionError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SessionError';
    this.code = code;  // bad_session | other_model | storage
  }
}

function openDb() {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === 'undefined') {
      reject(new SessionError('storage', 'This browser offers no IndexedDB storage here.'));
      return;
    }
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'id' });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new SessionError('storage', `Cannot open the session store: ${request.error?.message}`));
  });
}

async function withStore(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result.result);
      tx.onerror = () => reject(new SessionError('storage', `The session store failed: ${tx.error?.message}`));
      tx.onabort = () => reject(new SessionError('storage', `The session store failed: ${tx.error?.message}`));
    });
  } finally {
    db.close();
  }
}

/** Every saved session, newest first. */
export async function listSessions() {
  const all = await withStore('readonly', (store) => store.getAll());
  return all.sort((a, b) => b.savedAt.localeCompare(a.savedAt));
}

export function saveSession(session) {
  return withStore('readwrite', (store) => store.put(checkSession(session)));
}

export function deleteSession(id) {
  return withStore('readwrite', (store) => store.delete(id));
}

/** A new session record from the page's state. */
export function makeSession({ title, model, settings, mode, template, text, turns, contextTokens, nextSeed, stopString, snapshot }) {
  return checkSession({
    format: SESSION_FORMAT,
    version: SESSION_VERSION,
    id: crypto.randomUUID(),
    savedAt: new Date().toISOString(),
    title,
    model: { url: model.url, sha256: model.sha256 },
    settings,
    mode,
    template,
    text,
    turns,
    contextTokens,
    nextSeed,
    stopString: stopString ?? null,
    snapshot,
  });
}

/** Throws unless `model` (a model.info) is the file the session was saved with. */
export function requireSameModel(session, info) {
  if (!info.sha256) {
    throw new SessionError('other_model', 'The loaded model has no SHA-256 to compare with; load it by URL or from a file.');
  }
  if (info.sha256 !== session.model.sha256) {
    throw new SessionError('other_model',
      `This session was saved with another model (${session.model.url}, SHA-256 ${session.model.sha256.slice(0, 12)}…); ` +
      `the loaded one is ${info.sha256.slice(0, 12)}…. Load that model first.`);
  }
}

function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text) {
  const s = atob(text);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

/** The session as a JSON file's text. */
export function exportSession(session) {
  return JSON.stringify({ ...session, snapshot: toBase64(session.snapshot) }, null, 1);
}

/** A session from a file's text; a SessionError naming what is wrong otherwise. */
export function importSession(text) {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new SessionError('bad_session', 'This file is not a saved session (it is not JSON).');
  }
  if (raw === null || typeof raw !== 'object' || raw.format !== SESSION_FORMAT) {
    throw new SessionError('bad_session', 'This file is not a saved BitMamba session.');
  }
  let snapshot;
  try {
    snapshot = fromBase64(String(raw.snapshot));
  } catch {
    throw new SessionError('bad_session', 'The session file\'s state snapshot is damaged (not base64).');
  }
  return checkSession({ ...raw, snapshot });
}

const isText = (v) => typeof v === 'string';

// Every field a session needs, with its type; the first one missing or wrong
// is named.
function checkSession(s) {
  const fail = (what) => { throw new SessionError('bad_session', `The session is damaged: ${what}.`); };
  if (s.version !== SESSION_VERSION) fail(`version ${JSON.stringify(s.version)} is not ${SESSION_VERSION}`);
  if (!isText(s.id) || !isText(s.savedAt) || !isText(s.title)) fail('no id, date or title');
  if (!s.model || !isText(s.model.url) || !/^[0-9a-f]{64}$/.test(s.model.sha256 ?? '')) fail('no model URL and SHA-256');
  if (!s.settings || typeof s.settings !== 'object') fail('no sampling settings');
  if (s.mode !== 'completion' && s.mode !== 'conversation') fail(`mode ${JSON.stringify(s.mode)}`);
  if (!isText(s.template) || !isText(s.text)) fail('no template or text');
  if (!Array.isArray(s.turns)) fail('no turns');
  if (!Number.isInteger(s.contextTokens) || s.contextTokens < 0) fail('no context length');
  if (!isText(s.nextSeed) || !/^\d+$/.test(s.nextSeed)) fail('no seed to continue with');
  if (s.stopString !== null && !isText(s.stopString)) fail('a stop string that is not text');
  if (!(s.snapshot instanceof Uint8Array) || s.snapshot.length === 0) fail('no state snapshot');
  return s;
}
