#!/usr/bin/env node
// scripts/serve.mjs answers byte ranges as static hosts do: a real server on
// a real file, asked over HTTP (ctest browser_serve_ranges).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '../../scripts/serve.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmamba-serve-'));
const bytes = crypto.randomBytes(100000);
fs.writeFileSync(path.join(dir, 'model.bin'), bytes);
const { server, url } = await startServer({ port: 0, models: dir, web: dir, dist: dir });

function get(headers = {}, method = 'GET') {
  return new Promise((resolve, reject) => {
    http.get(new URL('models/model.bin', url), { headers, method }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
    }).on('error', reject);
  });
}

const cases = [];
const check = (name, fn) => cases.push([name, fn]);

let validators;
check('whole file: Accept-Ranges, a strong ETag, Last-Modified', async () => {
  const r = await get();
  assert.equal(r.status, 200);
  assert.equal(r.headers['accept-ranges'], 'bytes');
  assert.match(r.headers.etag, /^"[^"]+"$/);
  assert.ok(r.headers['last-modified']);
  assert.ok(r.body.equals(bytes));
  validators = { etag: r.headers.etag, lastModified: r.headers['last-modified'] };
});
check('bytes=N- gives 206 and the tail', async () => {
  const r = await get({ Range: 'bytes=12345-' });
  assert.equal(r.status, 206);
  assert.equal(r.headers['content-range'], `bytes 12345-99999/${bytes.length}`);
  assert.equal(Number(r.headers['content-length']), bytes.length - 12345);
  assert.ok(r.body.equals(bytes.subarray(12345)));
});
check('bytes=A-B and a suffix range', async () => {
  const a = await get({ Range: 'bytes=10-19' });
  assert.equal(a.status, 206);
  assert.ok(a.body.equals(bytes.subarray(10, 20)));
  const b = await get({ Range: 'bytes=-100' });
  assert.equal(b.headers['content-range'], `bytes 99900-99999/${bytes.length}`);
  assert.ok(b.body.equals(bytes.subarray(-100)));
});
check('If-Range with the ETag or Last-Modified still matching: 206', async () => {
  for (const v of [validators.etag, validators.lastModified]) {
    const r = await get({ Range: 'bytes=500-', 'If-Range': v });
    assert.equal(r.status, 206, v);
    assert.ok(r.body.equals(bytes.subarray(500)));
  }
});
check('If-Range that no longer matches: 200 and the whole file', async () => {
  for (const v of ['"another"', 'Thu, 01 Jan 1970 00:00:00 GMT', `W/${validators.etag}`]) {
    const r = await get({ Range: 'bytes=500-', 'If-Range': v });
    assert.equal(r.status, 200, v);
    assert.ok(r.body.equals(bytes));
  }
});
check('past the end: 416 with the size; several ranges: the whole file', async () => {
  const r = await get({ Range: `bytes=${bytes.length}-` });
  assert.equal(r.status, 416);
  assert.equal(r.headers['content-range'], `bytes */${bytes.length}`);
  const m = await get({ Range: 'bytes=0-1,5-6' });
  assert.equal(m.status, 200);
  assert.ok(m.body.equals(bytes));
});
check('a changed file has another ETag', async () => {
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(path.join(dir, 'model.bin'), later, later);
  const r = await get({ Range: 'bytes=500-', 'If-Range': validators.etag });
  assert.equal(r.status, 200);
  assert.notEqual(r.headers.etag, validators.etag);
});

let failed = 0;
for (const [name, fn] of cases) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
server.close();
fs.rmSync(dir, { recursive: true, force: true });
console.log(`${cases.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
