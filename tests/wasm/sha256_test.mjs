// The download hash (dist/bitmamba-sha256.wasm through web/sha256-wasm.js,
// and the JS one in web/sha256.js) against two independent SHA-256s:
// coreutils' sha256sum on a real model file made by the CLI, and Node's
// crypto (OpenSSL) on lengths around every block and padding boundary, fed
// in pieces that split blocks and the module's 1 MiB input buffer.
//
//   node sha256_test.mjs --bitmamba CLI --dist DIR --workdir DIR
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { WasmSha256 } = await import(path.join(ROOT, 'web', 'sha256-wasm.js'));
const { Sha256 } = await import(path.join(ROOT, 'web', 'sha256.js'));

const arg = (name) => process.argv[process.argv.indexOf(`--${name}`) + 1];
const CLI = arg('bitmamba');
const WORKDIR = arg('workdir');
const module = new WebAssembly.Module(fs.readFileSync(path.join(arg('dist'), 'bitmamba-sha256.wasm')));

const hashers = { wasm: () => new WasmSha256(module), js: () => new Sha256() };

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// Feeds `bytes` in pieces of the given sizes, cycling through them.
function hashInPieces(make, bytes, sizes) {
  const h = make();
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.min(sizes[i % sizes.length], bytes.length - at);
    h.update(bytes.subarray(at, at + n));
    at += n;
  }
  return h.hex();
}

test('a model file made by the CLI: the same SHA-256 as sha256sum', () => {
  fs.mkdirSync(WORKDIR, { recursive: true });
  const file = path.join(WORKDIR, 'sha256-model.bin');
  run(CLI, ['make-model', '--preset', 'tiny', '--seed', '5', '--out', file]);
  const want = run('sha256sum', [file]).split(' ')[0];
  const bytes = new Uint8Array(fs.readFileSync(file));
  assert.ok(bytes.length > 1 << 20, 'the model spans more than one input buffer');
  for (const [name, make] of Object.entries(hashers)) {
    assert.equal(hashInPieces(make, bytes, [bytes.length]), want, `${name}, whole`);
    assert.equal(hashInPieces(make, bytes, [65536]), want, `${name}, in network-sized chunks`);
    assert.equal(hashInPieces(make, bytes, [1, 63, 1000003, 4 << 20]), want, `${name}, in odd pieces`);
  }
});

test('every length around the block and padding boundaries', () => {
  const data = crypto.randomBytes(300);
  for (let n = 0; n <= 300; n++) {
    const bytes = new Uint8Array(data.subarray(0, n));
    const want = crypto.createHash('sha256').update(bytes).digest('hex');
    for (const [name, make] of Object.entries(hashers)) {
      assert.equal(hashInPieces(make, bytes, [n || 1]), want, `${name}, ${n} bytes at once`);
      assert.equal(hashInPieces(make, bytes, [7, 1, 50]), want, `${name}, ${n} bytes in pieces`);
    }
  }
});

test('instances are independent', () => {
  const a = new WasmSha256(module).update(new TextEncoder().encode('abc'));
  const b = new WasmSha256(module);
  assert.equal(a.hex(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(b.hex(), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});
