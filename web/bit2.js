// What the first 20 bytes of a BIT2 file (docs/format.md), and the embedding's
// type tag after them, say before the rest arrives: whether it is a model at
// all, and its exact size. The tensor order and shapes are fixed by the
// header, so the size is known without a Content-Length: the download
// allocates exactly that many bytes in the wasm heap, and a 404 page or a
// truncated file is refused before the engine ever sees it. The engine's
// parser still validates every byte.

import { BitMambaError } from './errors.js';

export const BIT2_MAGIC = 0x42495432;
export const BIT2_HEADER_BYTES = 20;
// The header and the embedding's type tag: enough to know the file's size.
export const BIT2_PREFIX_BYTES = 24;

const floatTensorBytes = (dims) => 8 + 4 * dims.length + 4 * dims.reduce((a, b) => a * b, 1);
const ternaryTensorBytes = (rows, cols) => 16 + Math.ceil((rows * cols) / 4);

// The embedding's forms (docs/format.md): type tag -> bytes of the tensor
// (type, ndim 2, dims, then the values) for [vocab, d_model].
const EMBED_TYPES = {
  0: { name: 'f32', bytes: (v, d) => floatTensorBytes([v, d]) },
  1: { name: 'f16', bytes: (v, d) => 16 + 2 * v * d },
  3: { name: 'q8', bytes: (v, d) => 16 + 4 * v + v * d },  // a float32 scale per row, then int8
};

/**
 * @param {Uint8Array} bytes at least the first 20 bytes of the file
 * @returns {{vocabSize: number, dModel: number, nLayers: number, nHeads: number, fileBytes: number}}
 */
export function parseBit2Header(bytes) {
  if (bytes.length < BIT2_HEADER_BYTES) {
    throw new BitMambaError('not_a_model', `Not a BitMamba model: the file has only ${bytes.length} bytes.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, BIT2_HEADER_BYTES);
  if (view.getInt32(0, true) !== BIT2_MAGIC) {
    const start = new TextDecoder().decode(bytes.subarray(0, 16)).trimStart().toLowerCase();
    const looksHtml = start.startsWith('<!doctype') || start.startsWith('<html') || start.startsWith('<');
    throw new BitMambaError('not_a_model', looksHtml
      ? 'Not a BitMamba model: the server sent a web page instead of the .bin file.'
      : 'Not a BitMamba model: the file does not start with the BIT2 magic number.');
  }
  const [vocabSize, dModel, nLayers, nHeads] = [4, 8, 12, 16].map((o) => view.getInt32(o, true));
  const bad = (what) => new BitMambaError('corrupt_model', `Corrupt model header: ${what}.`);
  // The engine's limits (core/model_file.h), so that a header refused here is
  // one the engine would refuse; they also keep the size arithmetic exact.
  if (!(vocabSize > 0 && vocabSize <= 1 << 20)) throw bad(`vocab_size ${vocabSize}`);
  if (!(dModel > 0 && dModel <= 1 << 14)) throw bad(`d_model ${dModel}`);
  if (!(nLayers > 0 && nLayers <= 1 << 10)) throw bad(`n_layers ${nLayers}`);
  if (!(nHeads > 0 && nHeads <= 1 << 14)) throw bad(`n_heads ${nHeads}`);
  if ((2 * dModel) % nHeads !== 0) throw bad(`n_heads ${nHeads} does not divide d_inner ${2 * dModel}`);

  const D = dModel, E = 2 * dModel, H = nHeads;
  const layer =
    floatTensorBytes([D]) + ternaryTensorBytes(2 * E + 3 * H, D) + floatTensorBytes([E, 1, 4]) +
    floatTensorBytes([E]) + floatTensorBytes([H]) + floatTensorBytes([H]) + floatTensorBytes([E]) +
    floatTensorBytes([E]) + ternaryTensorBytes(D, E);
  const fileBytes = BIT2_HEADER_BYTES + floatTensorBytes([vocabSize, D]) + nLayers * layer +
    2 * floatTensorBytes([D]) + ternaryTensorBytes(vocabSize, D);
  return { vocabSize, dModel, nLayers, nHeads, fileBytes };
}

/**
 * The header and the exact size of the file, whichever form its embedding
 * has: fileBytes of parseBit2Header is that of a plain BIT2 file (float32
 * embedding); a compact file (`bitmamba convert --embed f16|q8`) is smaller.
 * @param {Uint8Array} bytes at least the first BIT2_PREFIX_BYTES bytes of the file
 * @returns {{vocabSize: number, dModel: number, nLayers: number, nHeads: number, fileBytes: number,
 *   embedType: 'f32'|'f16'|'q8'}}
 */
export function parseBit2Prefix(bytes) {
  const header = parseBit2Header(bytes);
  if (bytes.length < BIT2_PREFIX_BYTES) {
    throw new BitMambaError('not_a_model', `Not a BitMamba model: the file has only ${bytes.length} bytes.`);
  }
  const tag = new DataView(bytes.buffer, bytes.byteOffset, BIT2_PREFIX_BYTES).getInt32(BIT2_HEADER_BYTES, true);
  const form = EMBED_TYPES[tag];
  if (!form) {
    throw new BitMambaError('corrupt_model',
      `Corrupt model: the embedding has type ${tag} (known: 0 float32, 1 half, 3 int8 rows).`);
  }
  const { vocabSize: v, dModel: d } = header;
  const fileBytes = header.fileBytes - EMBED_TYPES[0].bytes(v, d) + form.bytes(v, d);
  return { ...header, fileBytes, embedType: form.name };
}
