#!/usr/bin/env node
// Runs web/bench.html in one or every browser engine and prints its figures,
// next to the native CLI's `bench` on the same model, run in the same
// invocation, as ratios.
//
//   node scripts/bench-browser.mjs [--browser chromium|firefox|webkit|all] [--model FILE] [--preset 255m]
//        [--threads N] [--prompt-tokens 128] [--gen-tokens 128] [--runs 3] [--variant auto] [--kernels NAME]
//        [--no-isolation] [--no-native] [--json] [--executable PATH] [--web DIR]...
//
// Without --model it uses a synthetic model of the preset (default 255m:
// the shapes of BitMamba-2 255M, random weights), made with the CLI into
// build/bench/ on first use. The browsers are driven by scripts/drivers/.
// --web (repeatable) benchmarks other front ends (a checkout's web/) against
// the same wasm build, in the order given: `--web web --web OLD/web --web
// web` interleaves a before and after in one run.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServer } from './serve.mjs';
import { ENGINES, driverFor } from './drivers/index.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const o = {
  model: null, preset: '255m', threads: null, promptTokens: 128, genTokens: 128, runs: 3, variant: 'auto', kernels: '',
  isolation: true, native: true, json: false, browser: 'chromium', executable: null,
  cli: path.join(ROOT, 'build', 'release', 'cli', 'bitmamba'),
  dist: path.join(ROOT, 'build', 'wasm', 'dist'), webs: [],
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
  else if (a === '--dist') o.dist = path.resolve(v());
  else if (a === '--web') o.webs.push(path.resolve(v()));
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
if (!fs.existsSync(path.join(o.dist, 'bitmamba-simd128.wasm'))) {
  console.error(`bench-browser: no wasm build in ${o.dist} (scripts/build-wasm.sh)`);
  process.exit(1);
}

if (o.webs.length === 0) o.webs.push(path.join(ROOT, 'web'));
const engines = o.browser === 'all' ? ENGINES : [o.browser];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One engine: bench.html with autorun, polled until it leaves window.benchResult.
async function benchIn(engine, url) {
  const driver = await driverFor(engine);
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

const nativeByThreads = new Map();
function nativeBench(threads) {
  if (!o.native || !fs.existsSync(o.cli)) return null;
  if (!nativeByThreads.has(threads)) {
    const r = spawnSync(o.cli, ['bench', o.model, '--threads', String(threads), '--prompt-tokens', String(o.promptTokens),
      '--gen-tokens', String(o.genTokens), '--runs', String(o.runs), '--json'], { encoding: 'utf8' });
    let parsed = null;
    if (r.status === 0) {
      try { parsed = JSON.parse(r.stdout); } catch { parsed = null; }
    }
    nativeByThreads.set(threads, parsed);
  }
  return nativeByThreads.get(threads);
}

const results = [];
let failed = false;
for (const engine of engines) {
  for (const web of o.webs) {
    const { server, url } = await startServer({ port: 0, web, dist: o.dist, models: path.dirname(o.model), isolation: o.isolation });
    try {
      results.push({ ...(await benchIn(engine, url)), web: path.relative(ROOT, web) || '.' });
    } catch (e) {
      console.error(`bench-browser: ${engine}: ${e.message}`);
      failed = true;
    } finally {
      server.close();
    }
  }
}
for (const r of results) r.native = r.error ? null : nativeBench(r.threads);

const MiB = 1 << 20;
const f = (x, d = 1) => (x == null ? '–' : x.toFixed(d));
const ratio = (a, b) => (a != null && b ? `${(a / b).toFixed(2)}×` : '–');

function printOne(result) {
  if (result.error) {
    console.log(`${result.engine}: ${result.error.code}: ${result.error.message}`);
    failed = true;
    return;
  }
  const n = result.native;
  console.log(`== ${result.engine}${o.webs.length > 1 ? `, front end ${result.web}` : ''}`);
  console.log(`model          ${path.relative(ROOT, o.model)} (${(result.fileBytes / MiB).toFixed(1)} MiB)`);
  console.log(`browser        ${result.engine}, ${result.variant} (${result.isa}), ${result.threads} thread(s), ${result.crossOriginIsolated ? 'cross-origin isolated' : 'not isolated'}`);
  console.log(`load, network  ${f(result.loadNetworkMs, 0)} ms (engine ${f(result.loadNetworkTimings.engineMs, 0)}, download ${f(result.loadNetworkTimings.readMs, 0)}, prepare ${f(result.loadNetworkTimings.parseMs, 0)}; localhost)`);
  console.log(`load, cache    ${result.loadCacheMs == null ? 'no cache in this browser' : `${f(result.loadCacheMs, 0)} ms (engine ${f(result.loadCacheTimings.engineMs, 0)}, read ${f(result.loadCacheTimings.readMs, 0)}, prepare ${f(result.loadCacheTimings.parseMs, 0)})`}`);
  console.log(`prefill        ${f(result.prefillTokensPerSecond)} tok/s (${result.promptTokens} tokens)${n ? `, ${ratio(result.prefillTokensPerSecond, n.prefill_tok_s)} native` : ''}`);
  console.log(`first token    ${f(result.timeToFirstTokenMs, 0)} ms`);
  console.log(`decode         ${f(result.decodeTokensPerSecond)} tok/s (${result.generatedTokens} tokens, median of ${o.runs}; engine time)${n ? `, ${ratio(result.decodeTokensPerSecond, n.decode_tok_s)} native` : ''}`);
  console.log(`decode, page   ${f(result.pageDecodeTokensPerSecond)} tok/s (as the page receives the tokens), ${ratio(result.pageDecodeTokensPerSecond, result.decodeTokensPerSecond)} engine time${n ? `, ${ratio(result.pageDecodeTokensPerSecond, n.decode_tok_s)} native` : ''}`);
  console.log(`wasm memory    ${(result.heapBytes / MiB).toFixed(0)} MiB`);
  if (n) {
    console.log(`native CLI     prefill ${f(n.prefill_tok_s)} tok/s, decode ${f(n.decode_tok_s)} tok/s, first token ${f(n.ttft_ms ?? n.time_to_first_token_ms, 0)} ms (${n.isa ?? ''}, ${n.threads ?? result.threads} threads)`);
  }
}

if (o.json) {
  console.log(JSON.stringify(results, null, 2));
} else {
  for (const r of results) printOne(r);
  if (results.length > 1) {
    console.log('\n| engine | front end | build | threads | load network ms | load cache ms | prefill tok/s | decode tok/s | page tok/s | page / engine | prefill / native | decode / native |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of results.filter((x) => !x.error)) {
      const n = r.native;
      console.log(`| ${r.engine} | ${r.web} | ${r.variant} | ${r.threads} | ${f(r.loadNetworkMs, 0)} | ${r.loadCacheMs == null ? 'no cache' : f(r.loadCacheMs, 0)} | ${f(r.prefillTokensPerSecond)} | ${f(r.decodeTokensPerSecond)} | ${f(r.pageDecodeTokensPerSecond)} | ${ratio(r.pageDecodeTokensPerSecond, r.decodeTokensPerSecond)} | ${ratio(r.prefillTokensPerSecond, n?.prefill_tok_s)} | ${ratio(r.decodeTokensPerSecond, n?.decode_tok_s)} |`);
    }
  }
}
process.exit(failed ? 1 : 0);
