#!/usr/bin/env node
// Serves the BitMamba-2 demo on localhost: the page (web/), the wasm build
// (build/wasm/dist/ at /dist/) and the offline demo model
// (build/demo/bitmamba-demo.bin at /models/, made with the native CLI if
// missing). Node only, no dependencies.
//
//   node scripts/serve.mjs [--port 8080] [--host 127.0.0.1] [--no-isolation]
//                          [--web DIR] [--dist DIR] [--models DIR] [--cli PATH]
//
// By default every response carries COOP/COEP, so the page is cross-origin
// isolated and the engine may use several threads; --no-isolation leaves
// them out (one thread), as on a static host that cannot set headers.
// Files are served as static hosts serve them: with ETag and Last-Modified,
// and one byte range on request (206, If-Range), so a dropped model download
// resumes where it stopped.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DEMO_MODEL = 'bitmamba-demo.bin';

/** Content-Type by file extension, as a static host sends it. */
export const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.bin': 'application/octet-stream',
};

// The same policy as the page's <meta> tag, sent as a header so that it also
// covers the workers (a worker takes its CSP from its own response).
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  // Models may come from any https host (Hugging Face by default, "Another URL").
  "connect-src 'self' https:",
  "style-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function defaultOptions() {
  return {
    port: 8080,
    host: '127.0.0.1',
    isolation: true,
    web: path.join(ROOT, 'web'),
    dist: path.join(ROOT, 'build', 'wasm', 'dist'),
    models: path.join(ROOT, 'build', 'demo'),
    cli: path.join(ROOT, 'build', 'release', 'cli', 'bitmamba'),
    log: null,  // (method, path, status) => void
    csp: CONTENT_SECURITY_POLICY,
  };
}

/** Makes the demo model with the native CLI if it is missing; returns a note for the console. */
export function ensureDemoModel(options) {
  const file = path.join(options.models, DEMO_MODEL);
  if (fs.existsSync(file)) return null;
  if (!fs.existsSync(options.cli)) {
    return `no demo model at ${file} and no CLI at ${options.cli} to make it (build the native CLI first)`;
  }
  fs.mkdirSync(options.models, { recursive: true });
  const r = spawnSync(options.cli, ['make-model', '--preset', 'tiny', '--seed', '1', '--out', file], { encoding: 'utf8' });
  if (r.status !== 0) return `could not make the demo model: ${r.stderr || r.error}`;
  return `made the offline demo model ${file}`;
}

/** The validators a static host sends: a strong ETag from size and mtime, and Last-Modified. */
export function fileValidators(stat) {
  return {
    etag: `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`,
    lastModified: stat.mtime.toUTCString(),
  };
}

/**
 * Which bytes of a `size`-byte entity answer this request (RFC 9110 §14):
 * {status: 200} for all of it (no Range, a form not served here such as
 * several ranges, or an If-Range that no longer matches: the entity
 * changed), {status: 206, start, end} for one range (end inclusive), or
 * {status: 416} for a range that starts past the end.
 */
export function chooseRange(headers, size, { etag, lastModified }) {
  const range = headers.range;
  if (!range) return { status: 200 };
  const ifRange = headers['if-range'];
  if (ifRange !== undefined && ifRange !== etag && ifRange !== lastModified) return { status: 200 };
  const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { status: 200 };
  if (m[1] === '') {  // the last N bytes
    const n = Number(m[2]);
    return n === 0 ? { status: 416 } : { status: 206, start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size) return { status: 416 };
  if (end < start) return { status: 200 };  // an invalid range is ignored
  return { status: 206, start, end };
}

/** The headers that go with chooseRange's answer. */
export function rangeHeaders(choice, size, { etag, lastModified }) {
  const headers = { 'Accept-Ranges': 'bytes', ETag: etag, 'Last-Modified': lastModified };
  if (choice.status === 206) {
    headers['Content-Range'] = `bytes ${choice.start}-${choice.end}/${size}`;
    headers['Content-Length'] = choice.end - choice.start + 1;
  } else if (choice.status === 416) {
    headers['Content-Range'] = `bytes */${size}`;
    headers['Content-Length'] = 0;
  } else {
    headers['Content-Length'] = size;
  }
  return headers;
}

function resolveInside(dir, urlPath) {
  const file = path.resolve(dir, '.' + path.posix.normalize('/' + urlPath));
  return file === dir || file.startsWith(dir + path.sep) ? file : null;
}

/** The request handler; tests wrap it to add routes of their own. */
export function createHandler(opts) {
  const options = { ...defaultOptions(), ...opts };
  const mounts = [
    ['/dist/', path.resolve(options.dist)],
    ['/models/', path.resolve(options.models)],
    ['/', path.resolve(options.web)],
  ];

  return (req, res) => {
    const headers = {
      'Content-Security-Policy': options.csp,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache',
    };
    if (options.isolation) {
      headers['Cross-Origin-Opener-Policy'] = 'same-origin';
      headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
      headers['Cross-Origin-Resource-Policy'] = 'same-origin';
    }
    const send = (status, body, extra = {}) => {
      res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
      options.log?.(req.method, req.url, status);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n', { Allow: 'GET, HEAD' });

    let urlPath;
    try {
      urlPath = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    } catch {
      return send(400, 'bad request\n');
    }
    const [prefix, dir] = mounts.find(([p]) => urlPath.startsWith(p));
    let file = resolveInside(dir, urlPath.slice(prefix.length));
    if (!file) return send(403, 'forbidden\n');
    let stat;
    try {
      stat = fs.statSync(file);
      if (stat.isDirectory()) {
        if (!urlPath.endsWith('/')) return send(301, '', { Location: urlPath + '/' });
        file = path.join(file, 'index.html');
        stat = fs.statSync(file);
      }
    } catch {
      return send(404, `not found: ${urlPath}\n`);
    }
    const validators = fileValidators(stat);
    const choice = chooseRange(req.headers, stat.size, validators);
    res.writeHead(choice.status, {
      ...headers,
      'Content-Type': CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      ...rangeHeaders(choice, stat.size, validators),
    });
    options.log?.(req.method, req.url, choice.status);
    if (req.method === 'HEAD' || choice.status === 416 || stat.size === 0) return res.end();
    fs.createReadStream(file, choice.status === 206 ? { start: choice.start, end: choice.end } : {}).pipe(res);
  };
}

/** Starts a server; resolves with {server, url}. Port 0 picks a free port. */
export function startServer(opts = {}) {
  const options = { ...defaultOptions(), ...opts };
  const handler = opts.handler ?? createHandler(options);
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      const { port } = server.address();
      resolve({ server, url: `http://${options.host === '0.0.0.0' ? 'localhost' : options.host}:${port}/` });
    });
  });
}

function parseArgs(argv) {
  const options = defaultOptions();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--port') options.port = Number(value());
    else if (arg === '--host') options.host = value();
    else if (arg === '--no-isolation') options.isolation = false;
    else if (arg === '--web') options.web = path.resolve(value());
    else if (arg === '--dist') options.dist = path.resolve(value());
    else if (arg === '--models') options.models = path.resolve(value());
    else if (arg === '--cli') options.cli = path.resolve(value());
    else if (arg === '--quiet') options.quiet = true;
    else if (arg === '-h' || arg === '--help') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 13).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (try --help)`);
  }
  return options;
}

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`serve: ${e.message}`);
    process.exit(2);
  }
  const note = ensureDemoModel(options);
  if (note) console.log(`serve: ${note}`);
  if (!fs.existsSync(path.join(options.dist))) {
    console.log(`serve: no wasm build in ${options.dist} yet (run scripts/build-wasm.sh); the page will say so`);
  }
  if (!options.quiet) options.log = (method, url, status) => console.log(`${status} ${method} ${url}`);
  let started;
  for (let attempt = 0; ; attempt++) {
    try {
      started = await startServer(options);
      break;
    } catch (e) {
      if (e.code !== 'EADDRINUSE' || attempt === 10 || options.port === 0) {
        console.error(`serve: ${e.message}`);
        process.exit(1);
      }
      options.port += 1;
    }
  }
  console.log(`BitMamba-2 demo: ${started.url}`);
  console.log(`  cross-origin isolated (threads): ${options.isolation ? 'yes' : 'no (--no-isolation)'}`);
  console.log(`  offline demo model: ${started.url}models/${DEMO_MODEL}`);
  console.log('  Ctrl-C to stop');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
