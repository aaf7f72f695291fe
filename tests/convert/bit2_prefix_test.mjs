// web/bit2.js on compact files: the size parseBit2Prefix announces from the
// first 24 bytes is the size of the file `bitmamba convert` writes, for each
// embedding form and for shapes whose sizes are not multiples of 4; a
// too-short prefix or an unknown embedding tag is a typed error.
//
//   node bit2_prefix_test.mjs --bitmamba CLI --workdir DIR
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { parseBit2Header, parseBit2Prefix, BIT2_PREFIX_BYTES } = await import(path.join(ROOT, 'web', 'bit2.js'));
const { BitMambaError } = await import(path.join(ROOT, 'web', 'errors.js'));

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  assert.ok(i > 0 && process.argv[i + 1], `--${name} is required`);
  return process.argv[i + 1];
};
const cli = arg('bitmamba');
const workdir = arg('workdir');
fs.mkdirSync(workdir, { recursive: true });

function bitmamba(...args) {
  const r = spawnSync(cli, args.map(String), { encoding: 'utf8' });
  assert.equal(r.status, 0, `bitmamba ${args.join(' ')}: ${r.stderr}`);
}

const SHAPES = {
  tiny: ['--preset', 'tiny'],
  'v701-d73': ['--vocab', 701, '--d-model', 73, '--layers', 2, '--heads', 2],
  'v5-d3': ['--vocab', 5, '--d-model', 3, '--layers', 1, '--heads', 1],
};

for (const [name, shape] of Object.entries(SHAPES)) {
  test(`${name}: the announced size is the converted file's, for f32, f16 and q8`, () => {
    const plain = path.join(workdir, `${name}.bin`);
    bitmamba('make-model', ...shape, '--out', plain);
    const plainBytes = fs.readFileSync(plain);
    assert.equal(parseBit2Header(plainBytes).fileBytes, plainBytes.length);
    for (const kind of ['f32', 'f16', 'q8']) {
      const out = path.join(workdir, `${name}.${kind}.bin`);
      bitmamba('convert', plain, out, '--embed', kind);
      const bytes = fs.readFileSync(out);
      const got = parseBit2Prefix(bytes.subarray(0, BIT2_PREFIX_BYTES));
      assert.equal(got.embedType, kind);
      assert.equal(got.fileBytes, bytes.length, `${name} ${kind}`);
      fs.rmSync(out);
    }
    fs.rmSync(plain);
  });
}

function prefix(tag) {
  const bytes = new Uint8Array(BIT2_PREFIX_BYTES);
  const view = new DataView(bytes.buffer);
  [0x42495432, 50257, 128, 2, 4, tag].forEach((v, i) => view.setInt32(4 * i, v, true));
  return bytes;
}

const typedError = (code) => (e) => e instanceof BitMambaError && e.code === code;

test('an unknown embedding type tag is a corrupt model', () => {
  for (const tag of [2, 4, -1, 0x7fffffff]) {
    assert.throws(() => parseBit2Prefix(prefix(tag)), typedError('corrupt_model'), `tag ${tag}`);
  }
});

test('fewer than 24 bytes is not a model', () => {
  assert.throws(() => parseBit2Prefix(prefix(1).subarray(0, 22)), typedError('not_a_model'));
});
