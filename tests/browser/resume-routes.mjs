// Model downloads that break on purpose, for the resume checks (engines.mjs).
// Bytes are served with the range logic of scripts/serve.mjs; the query
// chooses how the first answer of a run goes wrong:
//
//   /test/resume/model.bin?run=ID      ID names the run (its log, its drops)
//     &drop=F        the first answer breaks off after fraction F of the file
//     &stall=1       ... or stops sending there and holds the connection open
//     &always=1      every answer breaks off at that byte (a download that cannot finish)
//     &ranges=0      the server ignores Range (always 200, no Accept-Ranges)
//     &validator=    etag (default), last-modified, none, or sha256 (the file's SHA-256 as its ETag)
//     &linked=wrong  an X-Linked-Etag that is not the file's SHA-256
//     &change=1      after the first answer the file is another one (new ETag and date)
//
//   /test/resume-log?run=ID            what each answer of the run was: status, range asked, bytes sent

import { createHash } from 'node:crypto';
import { chooseRange, rangeHeaders } from '../../scripts/serve.mjs';

const DROP_AFTER_MS = 500;

export function resumeRoutes({ original, changed, coep }) {
  const runs = new Map();

  const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

  function validatorsFor(q, version, bytes) {
    const date = new Date(Date.UTC(2026, 0, 1 + version)).toUTCString();
    const kind = q.get('validator') ?? 'etag';
    return {
      etag: kind === 'etag' ? `"v${version}-${q.get('run')}"` : kind === 'sha256' ? `"${sha256(bytes)}"` : undefined,
      lastModified: kind === 'none' ? undefined : date,
    };
  }

  function serveModel(req, res, q) {
    const run = q.get('run');
    if (!runs.has(run)) runs.set(run, []);
    const log = runs.get(run);
    const first = log.length === 0;
    const version = q.get('change') === '1' && !first ? 2 : 1;
    const bytes = version === 2 ? changed : original;
    const validators = validatorsFor(q, version, bytes);
    const ranges = q.get('ranges') !== '0';
    const choice = ranges ? chooseRange(req.headers, bytes.length, validators) : { status: 200 };
    const headers = rangeHeaders(choice, bytes.length, validators);
    if (!ranges) delete headers['Accept-Ranges'];
    if (q.get('linked') === 'wrong') headers['X-Linked-Etag'] = `"${'0'.repeat(64)}"`;
    for (const k of Object.keys(headers)) if (headers[k] === undefined) delete headers[k];
    res.writeHead(choice.status, { 'Content-Type': 'application/octet-stream', 'Cache-Control': 'no-cache', ...coep, ...headers });
    const entry = { status: choice.status, range: req.headers.range ?? null, ifRange: req.headers['if-range'] ?? null, sent: 0 };
    log.push(entry);
    if (choice.status === 416) return res.end();
    const start = choice.status === 206 ? choice.start : 0;
    const end = choice.status === 206 ? choice.end + 1 : bytes.length;
    const dropAt = q.has('drop') && (first || q.get('always') === '1') ? Math.floor(bytes.length * Number(q.get('drop'))) : null;
    if (dropAt === null || dropAt >= end) {
      entry.sent = end - start;
      return res.end(bytes.subarray(start, end));
    }
    const part = bytes.subarray(start, Math.max(start, dropAt));
    entry.sent = part.length;
    // Ends the connection after exactly these bytes: the page sees a body
    // shorter than its Content-Length, as when a connection drops. It waits
    // a moment first, as a connection that stalls before it drops: Chromium
    // throws away the bytes it has not handed to the page yet when the
    // connection closes, which would move the drop to an arbitrary byte.
    res.write(part, () => {
      if (q.get('stall') === '1') return;  // held open until the page goes away
      setTimeout(() => res.socket.end(), DROP_AFTER_MS);
    });
  }

  /** Handles the route and returns true, or returns false for any other path. */
  function handle(req, res, url) {
    if (url.pathname === '/test/resume/model.bin') {
      serveModel(req, res, url.searchParams);
      return true;
    }
    if (url.pathname === '/test/resume-log') {
      res.writeHead(200, { 'Content-Type': 'application/json', ...coep });
      res.end(JSON.stringify(runs.get(url.searchParams.get('run')) ?? []));
      return true;
    }
    return false;
  }
  handle.log = (run) => runs.get(run) ?? [];
  return handle;
}
