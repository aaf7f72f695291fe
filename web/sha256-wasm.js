// Incremental SHA-256 on the small wasm module dist/bitmamba-sha256.wasm
// (wasm/sha256.cpp), about twice as fast as SHA-256 in JS (sha256.js), so
// that hashing keeps up with a download from a fast link. Same interface as
// sha256.js's Sha256: update(bytes), hex().

/** Compiles the module at `wasmBase` (the engine's dist/ URL); null when it cannot. */
export async function compileSha256(wasmBase) {
  const url = new URL('bitmamba-sha256.wasm', wasmBase);
  try {
    const response = await fetch(url, { credentials: 'same-origin' });
    if (!response.ok) return null;
    return await WebAssembly.compile(await response.arrayBuffer());
  } catch {
    return null;
  }
}

export class WasmSha256 {
  /** @param {WebAssembly.Module} module */
  constructor(module) {
    this.x = new WebAssembly.Instance(module, {}).exports;
    this.x._initialize?.();
    this.input = this.x.sha256_input();
    this.capacity = this.x.sha256_input_capacity();
    this.x.sha256_init();
  }

  /** @param {Uint8Array} data */
  update(data) {
    for (let at = 0; at < data.length; at += this.capacity) {
      const n = Math.min(this.capacity, data.length - at);
      new Uint8Array(this.x.memory.buffer, this.input, n).set(data.subarray(at, at + n));
      this.x.sha256_update(n);
    }
    return this;
  }

  /** @returns {string} lower-case hex; the object cannot be updated afterwards */
  hex() {
    this.x.sha256_final();
    let out = '';
    for (const byte of new Uint8Array(this.x.memory.buffer, this.x.sha256_digest(), 32)) out += byte.toString(16).padStart(2, '0');
    return out;
  }
}
