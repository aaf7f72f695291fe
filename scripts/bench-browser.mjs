#!/usr/bin/env node
// Runs web/bench.html in one or every browser engine and prints its figures,
// next to the native CLI's `bench` on the same model (run in the same
// invocation, with the default kernels and with --isa avx2), as ratios, and
// every target of the browser's speed goals with pass or miss.
//
//   node scripts/bench-browser.mjs [--browser chromium|firefox|webkit|all] [--model FILE] [--preset 255m]
//        [--threads 2] [--prompt-tokens 512] [--gen-tokens 128] [--runs 3] [--variant auto] [--kernels NAME]
//        [--no-isolation] [--no-native] [--json] [--executable PATH] [--rounds N] [--playwright]
//        [--web DIR [--dist DIR]]...
//
// Without --model it uses a synthetic model of the preset (default 255m:
// the shapes of BitMamba-2 255M, random weights), made with the CLI into
// build/bench/ on first use. The browsers are driven by scripts/drivers/;
// Chromium by chromium-cdp.mjs, which leaves out the inspection of network
// traffic that Playwright turns on and that slows every download (--playwright
// uses the Playwright driver instead).
// --web (repeatable) benchmarks other front ends (a checkout's web/), each
// with the wasm build of the --dist that follows it (else the last --dist
// given before it, else build/wasm/dist), in the order given; --rounds N runs
// that sequence N times. `--web OLD/web --dist OLD/dist --web web --dist
// build/wasm/dist --rounds 2` interleaves a before and after of both the
// front end and the wasm build in one run. The targets are printed, never
// asserted: this is a benchmark, not a test.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServer } from './serve.mjs';
import { ENGINES, driverFor } from './drivers/index.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const o = {
  model: null, preset: '255m', threads: 2, promptTokens: 512, genTokens: 128, runs: 3, variant: 'auto', kernels: '',
  isolation: true, native: true, json: false, browser: 'chromium', executable: null, rounds: 1, playwright: false,
  cli: path.join(ROOT, 'build', 'release', 'cli', 'bitmamba'),
  dist: path.join(ROOT, 'build', 'wasm', 'dist'), setups: [],
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const v = () => argv[++i];
  if (a === '--model') o.model = path.resolve(v());
  else if (a === '--preset') o.preset = v();
  else if (a === '--threads') o.threads = Number(v());
  else if (a === '--prompt-tokens') o.promptTokens = Number(v());
  else if (a === '--gen-tokens') o.genTokens = Number(v());
  else if (a === '--runs') o.runs = Number(v());
  else if (a === '--variant') o.variant = v();
  else if (a === '--kernels') o.kernels = v();
  else if (a === '--no-isolation') o.isolation = false;
  else if (a === '--no-native') o.native = false;
  else if (a === '--json') o.json = true;
  else if (a === '--browser') o.browser = v();
  else if (a === '--executable' || a === '--chromium') o.executable = v();
  else if (a === '--cli') o.cli = path.resolve(v());
  else if (a === '--rounds') o.rounds = Number(v());
  else if (a === '--playwright') o.playwright = true;
  else if (a === '--dist') {
    // Pairs with the --web before it; also the default for any --web after.
    o.dist = path.resolve(v());
    const last = o.setups.at(-1);
    if (last && !last.distGiven) Object.assign(last, { dist: o.dist, distGiven: true });
  } else if (a === '--web') o.setups.push({ web: path.resolve(v()), dist: o.dist, distGiven: false });
  else {
    console.error(`bench-browser: unknown argument ${a}`);
    process.exit(2);
  }
}

if (!o.model) {
  o.model = path.join(ROOT, 'build', 'bench', `bitmamba-${o.preset}.bin`);
  if (!fs.existsSync(o.model)) {
    fs.mkdirSync(path.dirname(o.model), { recursive: true });
    console.error(`bench-browser: making a synthetic ${o.preset} model at ${path.relative(ROOT, o.model)}`);
    const r = spawnSync(o.cli, ['make-model', '--preset', o.preset, '--out', o.model], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(1);
  }
}
if (o.setups.length === 0) o.setups.push({ web: path.join(ROOT, 'web'), dist: o.dist });
for (const { dist } of o.setups) {
  if (!fs.existsSync(path.join(dist, 'bitmamba-simd128.wasm'))) {
    console.error(`bench-browser: no wasm build in ${dist} (scripts/build-wasm.sh)`);
    process.exit(1);
  }
}
const label = (dir) => path.relative(ROOT, dir) || '.';
const engines = o.browser === 'all' ? ENGINES : [o.browser];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One engine: bench.html with autorun, polled until it leaves window.benchResult.
async function benchIn(engine, url) {
  const driver = engine === 'chromium' && !o.playwright ? await import('./drivers/chromium-cdp.mjs') : await driverFor(engine);
  const browser = await driver.launch({ executable: o.executable ?? driver.DEFAULT_EXECUTABLE });
  try {
    const q = new URLSearchParams({
      model: `models/${path.basename(o.model)}`, prompt: o.promptTokens, gen: o.genTokens, runs: o.runs,
      variant: o.variant, kernels: o.kernels, autorun: '1',
    });
    if (o.threads) q.set('threads', o.threads);
    await browser.goto(`${url}bench.html?${q}`);
    const end = Date.now() + 30 * 60 * 1000;
    while (Date.now() < end) {
      const result = await browser.evaluate('window.benchResult ?? null');
      if (result) return { engine: browser.name, ...result };
      await sleep(500);
    }
    throw new Error(`${engine}: no result in 30 minutes`);
  } finally {
    await browser.close();
  }
}

// The CLI's bench on the same model and settings: with its default kernels
// (AVX-512 where the CPU has it) and with --isa avx2, once per round.
const nativeRuns = new Map();
function nativeBench(threads, isa, round) {
  if (!o.native || !fs.existsSync(o.cli)) return null;
  const key = `${threads} ${isa} ${round}`;
  if (!nativeRuns.has(key)) {
    const args = ['bench', o.model, '--threads', String(threads), '--prompt-tokens', String(o.promptTokens),
      '--gen-tokens', String(o.genTokens), '--runs', String(o.runs), '--json'];
    if (isa) args.push('--isa', isa);
    const r = spawnSync(o.cli, args, { encoding: 'utf8' });
    let parsed = null;
    if (r.status === 0) {
      try { parsed = JSON.parse(r.stdout); } catch { parsed = null; }
    } else console.error(`bench-browser: native bench ${isa || 'default'} failed: ${r.stderr.trim()}`);
    nativeRuns.set(key, parsed);
  }
  return nativeRuns.get(key);
}

const results = [];
let failed = false;
for (let round = 1; round <= o.rounds; round++) {
  for (const engine of engines) {
    for (const { web, dist } of o.setups) {
      const { server, url } = await startServer({ port: 0, web, dist, models: path.dirname(o.model), isolation: o.isolation });
      try {
        results.push({ ...(await benchIn(engine, url)), web: label(web), dist: label(dist), round });
      } catch (e) {
        console.error(`bench-browser: ${engine}: ${e.message}`);
        failed = true;
      } finally {
        server.close();
      }
    }
  }
  for (const r of results.filter((x) => x.round === round && !x.error)) {
    r.native = nativeBench(r.threads, '', round);
    r.nativeAvx2 = nativeBench(r.threads, 'avx2', round);
  }
}

const MiB = 1 << 20;
const f = (x, d = 1) => (x == null || Number.isNaN(x) ? '–' : x.toFixed(d));
const over = (a, b) => (a != null && b ? a / b : null);
const ratio = (a, b) => (over(a, b) == null ? '–' : `${over(a, b).toFixed(2)}×`);

// The speed goals of the browser runtime, each as {name, goal, value, unit, pass}.
function targets(r) {
  const fileMB = r.fileBytes / 1e6;
  const downloadMs = r.loadNetworkTimings?.readMs;
  const list = [
    { name: `decode, page / native AVX2 (${r.threads} threads)`, goal: '≥ 0.55×', value: over(r.pageDecodeTokensPerSecond, r.nativeAvx2?.decode_tok_s), unit: '×', pass: (v) => v >= 0.55 },
    { name: 'decode, page / engine time', goal: '≥ 0.97×', value: over(r.pageDecodeTokensPerSecond, r.decodeTokensPerSecond), unit: '×', pass: (v) => v >= 0.97 },
    { name: 'prefill / native AVX2', goal: '≥ 0.50×', value: over(r.prefillTokensPerSecond, r.nativeAvx2?.prefill_tok_s), unit: '×', pass: (v) => v >= 0.5 },
    { name: `first token (${r.promptTokens}-token prompt${r.promptTokens === 512 ? '' : '; the goal is for 512'})`, goal: '≤ 450 ms', value: r.timeToFirstTokenMs, unit: ' ms', pass: (v) => v <= 450 },
    { name: 'download (localhost), verified', goal: '≥ 250 MB/s', value: downloadMs ? fileMB / (downloadMs / 1000) : null, unit: ' MB/s', pass: (v) => v >= 250 },
    { name: 'load from the cache', goal: '≤ 800 ms', value: r.loadCacheMs, unit: ' ms', pass: (v) => v <= 800 },
    { name: 'wasm memory − file', goal: '≤ 48 MiB', value: (r.heapBytes - r.fileBytes) / MiB, unit: ' MiB', pass: (v) => v <= 48 },
  ];
  return list.map((t) => ({ ...t, verdict: t.value == null ? 'n/a' : t.pass(t.value) ? 'pass' : 'MISS' }));
}
const shown = (t) => (t.value == null ? '–' : `${f(t.value, t.unit === '×' ? 2 : t.unit === ' MiB' ? 1 : 0)}${t.unit}`);

function printOne(result) {
  if (result.error) {
    console.log(`${result.engine}: ${result.error.code}: ${result.error.message}`);
    failed = true;
    return;
  }
  const n = result.native;
  const a = result.nativeAvx2;
  const t = result.loadNetworkTimings;
  console.log(`== ${result.engine}, front end ${result.web}, wasm ${result.dist}${o.rounds > 1 ? `, round ${result.round}` : ''}`);
  console.log(`model          ${path.relative(ROOT, o.model)} (${(result.fileBytes / MiB).toFixed(1)} MiB)`);
  console.log(`browser        ${result.engine}, ${result.variant} (${result.isa}), ${result.threads} thread(s), ${result.crossOriginIsolated ? 'cross-origin isolated' : 'not isolated'}`);
  console.log(`load, network  ${f(result.loadNetworkMs, 0)} ms (engine ${f(t.engineMs, 0)}, download ${f(t.readMs, 0)}, prepare ${f(t.parseMs, 0)}; localhost)`);
  const d = result.downloadTimings;
  if (d) console.log(`  download      ${d.chunks} chunks (${d.reader} reader); waiting for the network ${f(d.networkWaitMs, 0)} ms, for the engine ${f(d.engineWaitMs, 0)}, copying into the heap ${f(d.heapCopyMs, 0)}, writing the cache ${f(d.cacheWriteMs, 0)}, waiting for the hash ${f(d.hashWaitMs, 0)}`);
  console.log(`load, cache    ${result.loadCacheMs == null ? 'no cache in this browser' : `${f(result.loadCacheMs, 0)} ms (engine ${f(result.loadCacheTimings.engineMs, 0)}, read ${f(result.loadCacheTimings.readMs, 0)}, prepare ${f(result.loadCacheTimings.parseMs, 0)})`}`);
  console.log(`prefill        ${f(result.prefillTokensPerSecond)} tok/s (${result.promptTokens} tokens), ${ratio(result.prefillTokensPerSecond, n?.prefill_tok_s)} native ${n?.isa ?? ''}, ${ratio(result.prefillTokensPerSecond, a?.prefill_tok_s)} native avx2`);
  console.log(`first token    ${f(result.timeToFirstTokenMs, 0)} ms`);
  console.log(`decode         ${f(result.decodeTokensPerSecond)} tok/s (${result.generatedTokens} tokens, median of ${o.runs}; engine time), ${ratio(result.decodeTokensPerSecond, n?.decode_tok_s)} native ${n?.isa ?? ''}, ${ratio(result.decodeTokensPerSecond, a?.decode_tok_s)} native avx2`);
  console.log(`decode, page   ${f(result.pageDecodeTokensPerSecond)} tok/s (as the page receives the tokens), ${ratio(result.pageDecodeTokensPerSecond, result.decodeTokensPerSecond)} engine time, ${ratio(result.pageDecodeTokensPerSecond, n?.decode_tok_s)} native ${n?.isa ?? ''}, ${ratio(result.pageDecodeTokensPerSecond, a?.decode_tok_s)} native avx2`);
  console.log(`wasm memory    ${(result.heapBytes / MiB).toFixed(0)} MiB (file + ${((result.heapBytes - result.fileBytes) / MiB).toFixed(1)} MiB)`);
  for (const [name, x] of [['native CLI', n], ['native avx2', a]]) {
    if (x) console.log(`${name.padEnd(15)}prefill ${f(x.prefill_tok_s)} tok/s, decode ${f(x.decode_tok_s)} tok/s, first token ${f(x.ttft_ms, 0)} ms (${x.isa}, ${x.threads} threads)`);
  }
  console.log('targets');
  for (const x of targets(result)) console.log(`  ${x.verdict.padEnd(5)} ${x.name}: ${shown(x)} (goal ${x.goal})`);
}

function printTable(list) {
  const names = targets(list[0]).map((x) => x.name.replace(/ \(.*\)$/, ''));
  console.log(`\n| round | engine | front end | wasm | build | threads | load network ms | load cache ms | prefill tok/s | decode tok/s | page tok/s | ${names.join(' | ')} |`);
  console.log(`|${' --- |'.repeat(11 + names.length)}`);
  for (const r of list) {
    const cells = targets(r).map((x) => `${shown(x)} ${x.verdict}`);
    console.log(`| ${r.round} | ${r.engine} | ${r.web} | ${r.dist} | ${r.variant} | ${r.threads} | ${f(r.loadNetworkMs, 0)} | ${r.loadCacheMs == null ? 'no cache' : f(r.loadCacheMs, 0)} | ${f(r.prefillTokensPerSecond)} | ${f(r.decodeTokensPerSecond)} | ${f(r.pageDecodeTokensPerSecond)} | ${cells.join(' | ')} |`);
  }
}

if (o.json) {
  console.log(JSON.stringify(results.map((r) => (r.error ? r : { ...r, targets: targets(r).map(({ pass, ...x }) => x) })), null, 2));
} else {
  for (const r of results) printOne(r);
  const ok = results.filter((x) => !x.error);
  if (ok.length > 1) printTable(ok);
}
process.exit(failed ? 1 : 0);
