#!/usr/bin/env node
// Runs web/bench.html in headless Chromium and prints its figures, next to
// the native CLI's `bench` on the same model for comparison.
//
//   node scripts/bench-browser.mjs [--model FILE] [--preset 255m] [--threads N]
//        [--prompt-tokens 128] [--gen-tokens 128] [--runs 3] [--variant auto] [--kernels NAME]
//        [--no-isolation] [--no-native] [--json] [--chromium /usr/bin/chromium]
//
// Without --model it uses a synthetic model of the preset (default 255m:
// the shapes of BitMamba-2 255M, random weights), made with the CLI into
// build/bench/ on first use.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServer } from './serve.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const o = {
  model: null, preset: '255m', threads: null, promptTokens: 128, genTokens: 128, runs: 3, variant: 'auto', kernels: '',
  isolation: true, native: true, json: false, chromium: '/usr/bin/chromium',
  cli: path.join(ROOT, 'build', 'release', 'cli', 'bitmamba'),
  dist: path.join(ROOT, 'build', 'wasm', 'dist'),
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
  else if (a === '--chromium') o.chromium = v();
  else if (a === '--cli') o.cli = path.resolve(v());
  else if (a === '--dist') o.dist = path.resolve(v());
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

const { chromium } = await import('playwright-core');
const { server, url } = await startServer({ port: 0, dist: o.dist, models: path.dirname(o.model), isolation: o.isolation });
const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmamba-bench-'));
const context = await chromium.launchPersistentContext(userDir, {
  executablePath: o.chromium, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
});
let result;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const q = new URLSearchParams({
    model: `models/${path.basename(o.model)}`, prompt: o.promptTokens, gen: o.genTokens, runs: o.runs,
    variant: o.variant, kernels: o.kernels, autorun: '1',
  });
  if (o.threads) q.set('threads', o.threads);
  await page.goto(`${url}bench.html?${q}`);
  await page.waitForFunction(() => window.benchResult, null, { timeout: 30 * 60 * 1000, polling: 500 });
  result = await page.evaluate(() => window.benchResult);
} finally {
  await context.close();
  server.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}
if (result.error) {
  console.error(`bench-browser: ${result.error.code}: ${result.error.message}`);
  process.exit(1);
}

let native = null;
if (o.native && fs.existsSync(o.cli)) {
  const r = spawnSync(o.cli, ['bench', o.model, '--threads', String(result.threads), '--prompt-tokens', String(o.promptTokens),
    '--gen-tokens', String(o.genTokens), '--runs', String(o.runs), '--json'], { encoding: 'utf8' });
  if (r.status === 0) {
    try { native = JSON.parse(r.stdout); } catch { native = null; }
  }
}

if (o.json) {
  console.log(JSON.stringify({ browser: result, native }, null, 2));
} else {
  const MiB = 1 << 20;
  const f = (x, d = 1) => (x == null ? '–' : x.toFixed(d));
  console.log(`model          ${path.relative(ROOT, o.model)} (${(result.fileBytes / MiB).toFixed(1)} MiB)`);
  console.log(`browser        Chromium headless, ${result.variant} (${result.isa}), ${result.threads} thread(s), ${result.crossOriginIsolated ? 'cross-origin isolated' : 'not isolated'}`);
  console.log(`load, network  ${f(result.loadNetworkMs, 0)} ms (engine ${f(result.loadNetworkTimings.engineMs, 0)}, download ${f(result.loadNetworkTimings.readMs, 0)}, prepare ${f(result.loadNetworkTimings.parseMs, 0)}; localhost)`);
  console.log(`load, cache    ${f(result.loadCacheMs, 0)} ms (engine ${f(result.loadCacheTimings.engineMs, 0)}, read ${f(result.loadCacheTimings.readMs, 0)}, prepare ${f(result.loadCacheTimings.parseMs, 0)})`);
  console.log(`prefill        ${f(result.prefillTokensPerSecond)} tok/s (${result.promptTokens} tokens)`);
  console.log(`first token    ${f(result.timeToFirstTokenMs, 0)} ms`);
  console.log(`decode         ${f(result.decodeTokensPerSecond)} tok/s (${result.generatedTokens} tokens, median of ${o.runs}; engine time)`);
  console.log(`decode, page   ${f(result.pageDecodeTokensPerSecond)} tok/s (as the page receives the tokens)`);
  console.log(`wasm memory    ${(result.heapBytes / MiB).toFixed(0)} MiB`);
  if (native) {
    const n = native;
    console.log(`native CLI     prefill ${f(n.prefill_tok_s)} tok/s, decode ${f(n.decode_tok_s)} tok/s, first token ${f(n.ttft_ms ?? n.time_to_first_token_ms, 0)} ms (${n.isa ?? ''}, ${n.threads ?? result.threads} threads)`);
  }
}
