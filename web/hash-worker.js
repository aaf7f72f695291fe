// Hashes a download off the loading worker's thread (heap-sink.js). The
// first message is the compiled SHA-256 module (sha256-wasm.js), or null to
// hash in JS; then, in order, either {shared, at, length}: bytes to read
// from the wasm heap (shared memory), or {copy}: a transferred copy of them.
// Every reply says how many bytes are done.

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
  const bytes = e.data.copy ? new Uint8Array(e.data.copy) : new Uint8Array(e.data.shared, e.data.at, e.data.length);
  hash.update(bytes);
  done += bytes.length;
  self.postMessage({ done });
};
