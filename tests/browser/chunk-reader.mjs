// web/heap-sink.js's chunkReader on Node's own streams (the same WHATWG
// Streams standard the browsers implement): small reads gathered into
// 1 MiB values, large ones passed through, the bytes before a failure
// delivered before the failure, and a plain stream read as it is.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkReader } from '../../web/heap-sink.js';

const KiB = 1024;
const MiB = 1024 * KiB;

// The bytes 0, 1, 2, ... (mod 251) of a body of `total` bytes.
const bodyByte = (i) => i % 251;

// A byte stream that enqueues `piece` bytes per pull, then closes, or
// errors after `failAfter` bytes.
function byteStream(total, piece, failAfter = Infinity) {
  let sent = 0;
  return new ReadableStream({
    type: 'bytes',
    pull(controller) {
      if (sent >= failAfter) return controller.error(new TypeError('connection reset'));
      if (sent >= total) {
        controller.close();
        controller.byobRequest?.respond(0);  // a pending BYOB read ends only then (the Streams standard)
        return;
      }
      const n = Math.min(piece, total - sent);
      controller.enqueue(Uint8Array.from({ length: n }, (_, i) => bodyByte(sent + i)));
      sent += n;
    },
  });
}

async function readAll(reader) {
  const sizes = [];
  let offset = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { sizes, offset };
    for (let i = 0; i < value.length; i++) {
      if (value[i] !== bodyByte(offset + i)) throw new Error(`byte ${offset + i} is ${value[i]}`);
    }
    offset += value.length;
    sizes.push(value.length);
  }
}

test('small reads are gathered into whole buffers', async () => {
  const reader = chunkReader(byteStream(2 * MiB + 100 * KiB + 7, 64 * KiB));
  assert.equal(reader.mode, 'byob');
  const { sizes, offset } = await readAll(reader);
  assert.equal(offset, 2 * MiB + 100 * KiB + 7);
  assert.deepEqual(sizes, [MiB, MiB, 100 * KiB + 7]);
});

test('large reads pass straight through', async () => {
  const { sizes, offset } = await readAll(chunkReader(byteStream(2 * MiB, 512 * KiB)));
  assert.equal(offset, 2 * MiB);
  assert.deepEqual(sizes, [512 * KiB, 512 * KiB, 512 * KiB, 512 * KiB]);
});

test('the bytes before a failure come first', async () => {
  const reader = chunkReader(byteStream(4 * MiB, 64 * KiB, 320 * KiB));
  const first = await reader.read();
  assert.equal(first.done, false);
  assert.equal(first.value.length, 320 * KiB);
  for (let i = 0; i < first.value.length; i++) assert.equal(first.value[i], bodyByte(i));
  await assert.rejects(reader.read(), /connection reset/);
  await assert.rejects(reader.read(), /connection reset/);
});

test('a failure with nothing gathered is thrown at once', async () => {
  const reader = chunkReader(byteStream(4 * MiB, 64 * KiB, 0));
  await assert.rejects(reader.read(), /connection reset/);
});

test('a stream that is not a byte stream is read as it is', async () => {
  const stream = new ReadableStream({
    start(controller) {
      controller.enqueue(Uint8Array.from([0, 1, 2]));
      controller.enqueue(Uint8Array.from([3, 4]));
      controller.close();
    },
  });
  const reader = chunkReader(stream);
  assert.equal(reader.mode, 'default');
  const { sizes, offset } = await readAll(reader);
  assert.deepEqual(sizes, [3, 2]);
  assert.equal(offset, 5);
});
