// Hashes a download off the loading worker's thread (heap-sink.js). The
// first message is the compiled SHA-256 module (sha256-wasm.js), or null to
// hash in JS; then chunks arrive transferred, in order, and every reply says
// how many bytes are done so the sender can hold back when it runs ahead.

import { Sha256 } from './sha256.js';
import { WasmSha256 } from './sha256-wasm.js';

let hash = null;
let done = 0;
self.onmessage = (e) => {
  if (hash === null) {
    hash = e.data.module ? new WasmSha256(e.data.module) : new Sha256();
    return;
  }
  if (e.data === 'digest') {
    self.postMessage({ done, hex: hash.hex() });
    return;
  }
  const chunk = new Uint8Array(e.data);
  hash.update(chunk);
  done += chunk.length;
  self.postMessage({ done });
};
