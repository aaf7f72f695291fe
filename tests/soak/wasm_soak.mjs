// A long generation through the wasm build under Node (web/wasm-engine.js):
// N tokens (default 20,000) on one session, in calls of 100 tokens. After
// each call the logits must be finite; wasm memory and the bytes malloc has
// in use after all N must be within 1 MiB of their values after the first
// 1,000 (wasm memory never shrinks, so a leak shows in malloc's count
// first); the last 2,000-token window's speed must not have fallen below a
// third of the first's. Speed is over the process's CPU time (one thread:
// no worker threads), which other processes do not inflate. Prints the
// figures.
//
//   node --experimental-wasm-relaxed-simd --no-liftoff wasm_soak.mjs MODEL.bit2 [TOKENS]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { loadWasmEngine, detectVariant } = await import(path.join(ROOT, 'web', 'wasm-engine.js'));

const [modelPath, tokensArg] = process.argv.slice(2);
const TOTAL = Number(tokensArg ?? 20000);
const CALL = 100;
const WINDOW = 2000;
const BASELINE = 1000;
const MiB = 1 << 20;

const engine = await loadWasmEngine({ variant: detectVariant(), threads: 1 });
const bytes = fs.readFileSync(modelPath);
const buf = engine.allocBuffer(bytes.length);
engine.heapView(buf).set(bytes);
const model = engine.loadModel(buf, { threads: 1 });
const session = model.newSession();
session.feed([464, 329, 318, 257]);

const memory = () => ({ heap: engine.heapBytes(), inUse: engine.heapInUse() });
const mib = (b) => (b / MiB).toFixed(2);
let done = 0;
let baseline = null;
let windowStart = process.cpuUsage();
const speed = [];
while (done < TOTAL) {
  const r = session.generate([], { seed: done }, Math.min(CALL, TOTAL - done));
  done += r.generatedTokens;
  const logits = session.logits();
  if (!logits.every(Number.isFinite)) {
    console.error(`FAIL: non-finite logits after ${done} tokens`);
    process.exit(1);
  }
  if (baseline === null && done >= BASELINE) {
    baseline = memory();
    console.log(`${done} tokens: wasm memory ${mib(baseline.heap)} MiB, malloc in use ${baseline.inUse} bytes`);
  }
  if (done % WINDOW === 0) {
    const cpu = process.cpuUsage(windowStart);
    speed.push(WINDOW / ((cpu.user + cpu.system) / 1e6));
    windowStart = process.cpuUsage();
    console.log(`${done} tokens: ${speed.at(-1).toFixed(0)} tokens/CPU-s over the last window`);
  }
}
const end = memory();
const failures = [];
if (end.heap - baseline.heap > MiB) failures.push(`wasm memory grew by ${end.heap - baseline.heap} bytes`);
if (end.inUse - baseline.inUse > MiB) failures.push(`malloc in use grew by ${end.inUse - baseline.inUse} bytes`);
if (speed.length >= 2 && speed.at(-1) < speed[0] / 3) failures.push(`speed fell from ${speed[0]} to ${speed.at(-1)}`);
session.dispose();
model.dispose();
console.log(`${failures.length ? 'FAIL' : 'ok'}: ${done} tokens (${engine.variant}), logits finite throughout, ` +
  `wasm memory ${mib(baseline.heap)} -> ${mib(end.heap)} MiB, ` +
  `malloc in use ${baseline.inUse} -> ${end.inUse} bytes, ` +
  `${speed[0]?.toFixed(0)} -> ${speed.at(-1)?.toFixed(0)} tokens/CPU-s`);
for (const f of failures) console.error(`FAIL: ${f}`);
process.exit(failures.length ? 1 : 0);
