// Hashes a download off the loading worker's thread (heap-sink.js): chunks
// arrive transferred, in order; every reply says how many bytes are done so
// the sender can hold back when it runs ahead.

import { Sha256 } from './sha256.js';

const hash = new Sha256();
let done = 0;
self.onmessage = (e) => {
  if (e.data === 'digest') {
    self.postMessage({ done, hex: hash.hex() });
    return;
  }
  const chunk = new Uint8Array(e.data);
  hash.update(chunk);
  done += chunk.length;
  self.postMessage({ done });
};
