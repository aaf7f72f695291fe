// A plain static file server for the package and site tests: files under
// one folder, the same extra headers on every response, and a few fixed
// routes (the test's expectations, the model). It does what any static host
// does and nothing more, so a page that works here needs no server logic.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { CONTENT_TYPES } from '../../scripts/serve.mjs';

/**
 * Serves `root` at `prefix` on a free localhost port.
 * routes: { '/path': Buffer | string | () => (Buffer | string) } answered before files.
 * Resolves to { url, requests, close() }: url ends with '/', requests lists the paths asked for.
 */
export function serveDir({ root: rootDir, prefix = '/', headers = {}, routes = {} }) {
  const root = path.resolve(rootDir);
  const requests = [];
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://x');
    requests.push(pathname);
    const send = (status, type, body) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (pathname in routes) {
      const body = typeof routes[pathname] === 'function' ? routes[pathname]() : routes[pathname];
      return send(200, CONTENT_TYPES[path.extname(pathname)] ?? 'application/octet-stream', body);
    }
    if (!pathname.startsWith(prefix)) return send(404, 'text/plain', 'not found');
    let file = path.join(root, decodeURIComponent(pathname.slice(prefix.length)));
    if (!file.startsWith(root)) return send(403, 'text/plain', 'forbidden');
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!fs.existsSync(file)) return send(404, 'text/plain', 'not found');
    return send(200, CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream', fs.readFileSync(file));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}/`,
      requests,
      close: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }),
    }));
  });
}

/** Headers that make a page cross-origin isolated (threads). */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** What a CDN sends for npm files: any origin may read them, and isolated pages may embed them. */
export const CDN_HEADERS = {
  'Access-Control-Allow-Origin': '*',
  'Cross-Origin-Resource-Policy': 'cross-origin',
};
