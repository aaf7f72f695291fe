#!/usr/bin/env node
// The Chromium-only browser tests: the real demo page (web/) and the wasm
// build in Chromium, driven by playwright-core, checked against the native
// CLI, for what needs Chromium's DevTools protocol or file chooser. The checks
// of every engine are page/checks.js; engines.mjs runs this file after them
// (ctest browser_chromium).
//
//   node tests/browser/run.mjs --cli build/release/cli/bitmamba \
//        [--dist build/wasm/dist] [--out build/release/tests/browser] \
//        [--chromium /usr/bin/chromium] [--only NAME,...]
//
// Prints one line per test and `N passed, M failed` last; exits 1 on a
// failure, 77 (skipped) when the wasm build or Chromium is missing.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CONTENT_SECURITY_POLICY, createHandler, startServer } from '../../scripts/serve.mjs';
import { testModels, PROMPT_TOKENS, SAMPLING_CASES } from './test-models.mjs';
import { conversationTests } from './conversation-tests.mjs';
import { parseOptions } from '../common/options.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SKIP = 77;

const args = parseOptions(process.argv.slice(2), {
  cli: path.join(ROOT, 'build', 'release', 'cli', 'bitmamba'),
  dist: path.join(ROOT, 'build', 'wasm', 'dist'),
  out: path.join(ROOT, 'build', 'browser-tests'),
  web: path.join(ROOT, 'web'),
  chromium: '/usr/bin/chromium',
  only: null,
}, ['cli', 'dist', 'out', 'web']);
if (args.only) args.only = new Set(args.only.split(','));
if (!fs.existsSync(path.join(args.dist, 'bitmamba-simd128.wasm'))) {
  console.log(`browser tests skipped: no wasm build in ${args.dist} (scripts/build-wasm.sh)`);
  process.exit(SKIP);
}
if (!fs.existsSync(args.chromium)) {
  console.log(`browser tests skipped: no Chromium at ${args.chromium}`);
  process.exit(SKIP);
}
const { chromium } = await import('playwright-core');

fs.mkdirSync(args.out, { recursive: true });
const artifacts = path.join(args.out, 'artifacts');
fs.mkdirSync(artifacts, { recursive: true });

const modelsDir = path.join(args.out, 'models');
// The offline demo model, its broken variants, its compact (q8) form and the CLI's tokens for them.
const { cli, demoModel, demoBytes, truncated, code3, compactModel, nativeTokens } =
  testModels(args.cli, modelsDir);

// Another origin standing in for Hugging Face: a redirect to a CDN path
// that answers with CORS, and a file without CORS headers.
const cdnRequests = [];
const cdnServer = await startServer({
  port: 0,
  handler: (req, res) => {
    const url = new URL(req.url, 'http://x');
    cdnRequests.push(url.pathname);
    if (url.pathname === '/resolve/main/model.bin') {
      res.writeHead(302, { Location: '/cdn/model.bin', 'Access-Control-Allow-Origin': '*' });
      return res.end();
    }
    if (url.pathname === '/cdn/model.bin' || url.pathname === '/no-cors/model.bin') {
      const cors = url.pathname.startsWith('/cdn/') ? { 'Access-Control-Allow-Origin': '*' } : {};
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': demoBytes.length, ...cors });
      return res.end(demoBytes);
    }
    res.writeHead(404);
    return res.end();
  },
});
const cdnOrigin = new URL(cdnServer.url).origin;
// The pages allow any https host; the test's CDN is plain http on another port.
const testCsp = CONTENT_SECURITY_POLICY.replace("connect-src 'self' https:", `connect-src 'self' https: ${cdnOrigin}`);

// One server with COOP/COEP and one without, plus routes that fail on purpose.
const requests = [];
function testRoutes(isolated) {
  const serve = createHandler({ web: args.web, dist: args.dist, models: modelsDir, isolation: isolated, csp: testCsp });
  const coep = isolated ? { 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Opener-Policy': 'same-origin' } : {};
  return (req, res) => {
    const url = new URL(req.url, 'http://x');
    requests.push(url.pathname);
    const bin = { 'Content-Type': 'application/octet-stream', ...coep };
    switch (url.pathname) {
      case '/test/missing.bin':
        res.writeHead(404, { 'Content-Type': 'text/html', ...coep });
        return res.end('<!doctype html><title>404</title><h1>Not Found</h1>');
      case '/test/page.bin':
        res.writeHead(200, { 'Content-Type': 'text/html', ...coep });
        return res.end('<!DOCTYPE html><html><body>Sign in to continue</body></html>\n'.repeat(50));
      case '/test/truncated.bin':
        res.writeHead(200, { ...bin, 'Content-Length': truncated.length });
        return res.end(truncated);
      case '/test/code3.bin':
        res.writeHead(200, { ...bin, 'Content-Length': code3.length });
        return res.end(code3);
      case '/test/no-length.bin': {  // chunked: no Content-Length
        res.writeHead(200, bin);
        let at = 0;
        const next = () => {
          if (at >= demoBytes.length) return res.end();
          const chunk = demoBytes.subarray(at, at + (1 << 20));
          at += chunk.length;
          res.write(chunk, next);
        };
        return next();
      }
      case '/test/drop.bin':  // the connection dies halfway
        res.writeHead(200, { ...bin, 'Content-Length': demoBytes.length });
        res.write(demoBytes.subarray(0, demoBytes.length >> 1), () => setTimeout(() => res.socket.destroy(), 50));
        return;
      case '/test/slow.bin': {  // ~2.5 MiB/s, for cancelling mid-download
        res.writeHead(200, { ...bin, 'Content-Length': demoBytes.length });
        let at = 0;
        const timer = setInterval(() => {
          if (at >= demoBytes.length || res.destroyed) { clearInterval(timer); return res.end(); }
          res.write(demoBytes.subarray(at, at + (128 << 10)));
          at += 128 << 10;
        }, 50);
        res.on('close', () => clearInterval(timer));
        return;
      }
      default:
        return serve(req, res);
    }
  };
}

const isolatedServer = await startServer({ port: 0, handler: testRoutes(true) });
const plainServer = await startServer({ port: 0, handler: testRoutes(false) });

const launchArgs = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];
const userDirs = [];
async function openBrowser(extraArgs = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmamba-browser-'));
  userDirs.push(dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: args.chromium, headless: true, args: [...launchArgs, ...extraArgs], viewport: { width: 1200, height: 1000 },
  });
  const problems = [];  // CSP violations, page errors
  const watch = (page) => {
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on('worker', (w) => w.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`worker console: ${m.text()}`);
    }));
  };
  context.on('page', watch);
  const page = context.pages()[0] ?? (await context.newPage());
  watch(page);
  return { context, page, problems };
}

async function openDemo(page, server) {
  await page.goto(server.url);
  await page.waitForFunction(() => window.bitmambaDemo && window.bitmambaDemo.state === 'idle');
}

/** Loads a model through the page's controls; returns {state, info, error}. */
async function loadViaUi(page, choice, { url, file, timeout = 120000 } = {}) {
  const before = await page.evaluate(() => window.bitmambaDemo.loadsFinished ?? 0);
  if (choice === 'url') await page.fill('#model-url', url);
  if (choice === 'file') await page.setInputFiles('#model-file', file);
  await page.check(`input[name=model][value=${choice}]`);
  await page.click('#load');
  try {
    await page.waitForFunction((n) => (window.bitmambaDemo.loadsFinished ?? 0) > n, before, { timeout });
  } catch (e) {
    const shown = await page.evaluate(() => `${document.getElementById('progress-text').textContent} | ${document.getElementById('model-status').textContent}`);
    throw new Error(`loading ${choice} did not finish in ${timeout / 1000} s; the page shows: ${shown}`);
  }
  return page.evaluate(() => ({
    state: window.bitmambaDemo.state,
    info: window.bitmambaDemo.model ? window.bitmambaDemo.model.info : null,
    error: window.bitmambaDemo.lastError,
    banner: document.getElementById('error').hidden ? null : document.getElementById('error').dataset.code,
  }));
}

async function setSettings(page, s) {
  const fields = { temperature: '#temperature', repetitionPenalty: '#repetition-penalty', minP: '#min-p', topP: '#top-p', topK: '#top-k', maxTokens: '#max-tokens', seed: '#seed' };
  for (const [key, selector] of Object.entries(fields)) if (s[key] !== undefined) await page.fill(selector, String(s[key]));
  if (s.prompt !== undefined) await page.fill('#prompt', s.prompt);
}

async function generateViaUi(page, s, { timeout = 120000 } = {}) {
  await setSettings(page, s);
  const before = await page.evaluate(() => window.bitmambaDemo.runsCompleted ?? 0);
  await page.click('#generate');
  await page.waitForFunction((n) => (window.bitmambaDemo.runsCompleted ?? 0) > n, before, { timeout });
  return page.evaluate(() => window.bitmambaDemo.lastRun);
}

/** Everything under the origin's OPFS root, as paths. */
function listStorage(page) {
  return page.evaluate(async () => {
    const out = [];
    const walk = async (dir, prefix) => {
      for await (const [name, handle] of dir.entries()) {
        if (handle.kind === 'directory') await walk(handle, `${prefix}${name}/`);
        else out.push(`${prefix}${name}`);
      }
    };
    await walk(await navigator.storage.getDirectory(), '');
    return out;
  });
}

const modelRequests = (name) => requests.filter((p) => p.endsWith(name)).length;

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

function sameTokens(got, want, what) {
  const n = Math.max(got.length, want.length);
  for (let i = 0; i < n; i++) {
    if (got[i] !== want[i]) {
      throw new Error(`${what}: token ${i} is ${got[i]}, native ${want[i]} (browser ${got.length} tokens, native ${want.length})`);
    }
  }
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

const PROMPT = 'The history of the printing press begins';

test('parity_isolated_ui', async () => {
  const { context, page, problems } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    const loaded = await loadViaUi(page, 'demo');
    assert(loaded.state === 'ready', `load failed: ${JSON.stringify(loaded.error)}`);
    const info = loaded.info;
    assert(info.crossOriginIsolated === true, 'page should be cross-origin isolated');
    assert(info.threads > 1, `expected more than one thread with COOP/COEP, got ${info.threads} (${info.threadsReason})`);
    const settings = { prompt: PROMPT, seed: 42, maxTokens: 48 };
    const run = await generateViaUi(page, settings);
    const promptIds = await page.evaluate((p) => window.bitmambaDemo.model.tokenize(p).then(Array.from), PROMPT);
    sameTokens(run.tokens, nativeTokens(promptIds, settings), 'UI generation vs CLI');
    const shown = await page.textContent('#output-text');
    assert(shown.length > 0, 'no text shown');
    assert(problems.length === 0, problems.join('\n'));
    return `${run.tokens.length} tokens equal the CLI's; ${info.threads} threads (${info.variant})`;
  } finally {
    await context.close();
  }
});

test('continue_button_equals_one_run', async () => {
  const { context, page, problems } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    assert((await loadViaUi(page, 'demo')).state === 'ready', 'load failed');
    const first = await generateViaUi(page, { prompt: PROMPT, seed: 42, maxTokens: 20 });
    const before = await page.evaluate(() => window.bitmambaDemo.runsCompleted);
    assert(await page.isEnabled('#continue'), 'Continue is not offered after a run');
    await page.click('#continue');
    await page.waitForFunction((n) => window.bitmambaDemo.runsCompleted > n, before);
    const second = await page.evaluate(() => window.bitmambaDemo.lastRun);
    const promptIds = await page.evaluate((p) => window.bitmambaDemo.model.tokenize(p).then(Array.from), PROMPT);
    sameTokens([...first.tokens, ...second.tokens], nativeTokens(promptIds, { seed: 42, maxTokens: 40 }), 'Generate + Continue vs one CLI run');
    const stats = await page.textContent('#stats');
    const contextTokens = promptIds.length + 40;
    assert(stats.includes(`context ${contextTokens} tokens`), `the stats line does not show context ${contextTokens}: ${stats}`);
    const shot = path.join(artifacts, 'continued.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert(problems.length === 0, problems.join('\n'));
    return `20 + 20 tokens equal the CLI's 40; screenshot ${path.relative(ROOT, shot)}`;
  } finally {
    await context.close();
  }
});

test('parity_api_settings', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    assert((await loadViaUi(page, 'demo')).state === 'ready', 'load failed');
    const prompt = PROMPT_TOKENS;
    const cases = SAMPLING_CASES;
    for (const c of cases) {
      const got = await page.evaluate(async ({ prompt, c }) => {
        const g = window.bitmambaDemo.model.generate({ tokens: prompt }, c);
        const out = [];
        for await (const piece of g) if (piece.token !== null) out.push(piece.token);
        return out;
      }, { prompt, c });
      sameTokens(got, nativeTokens(prompt, c), `settings ${JSON.stringify(c)}`);
    }
    return `${cases.length} sampling settings equal the CLI's`;
  } finally {
    await context.close();
  }
});

test('no_isolation_single_thread', async () => {
  const { context, page, problems } = await openBrowser();
  try {
    await openDemo(page, plainServer);
    const loaded = await loadViaUi(page, 'demo');
    assert(loaded.state === 'ready', `load failed: ${JSON.stringify(loaded.error)}`);
    assert(loaded.info.crossOriginIsolated === false, 'should not be isolated');
    assert(loaded.info.threads === 1, `expected 1 thread, got ${loaded.info.threads}`);
    // Without isolation the heap cannot be posted to the hash worker: it gets copies.
    const sha = (await import('node:crypto')).createHash('sha256').update(demoBytes).digest('hex');
    assert(loaded.info.sha256 === sha, `sha256 ${loaded.info.sha256} != ${sha} (cache ${JSON.stringify(loaded.info.cache)})`);
    const settings = { prompt: PROMPT, seed: 5, maxTokens: 32 };
    const run = await generateViaUi(page, settings);
    const promptIds = await page.evaluate((p) => window.bitmambaDemo.model.tokenize(p).then(Array.from), PROMPT);
    sameTokens(run.tokens, nativeTokens(promptIds, settings), 'single-thread generation vs CLI');
    assert(await page.isVisible('#coi-note'), 'the one-thread note should be shown');
    assert(problems.length === 0, problems.join('\n'));
    return `1 thread; the download's SHA-256 is the file's; ${run.tokens.length} tokens equal the CLI's`;
  } finally {
    await context.close();
  }
});

test('cache_second_load_no_network', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    const first = await loadViaUi(page, 'demo');
    assert(first.state === 'ready' && first.info.source === 'network', `first load: ${JSON.stringify(first.error ?? first.info.source)}`);
    assert(first.info.cache.status === 'stored', `not stored: ${JSON.stringify(first.info.cache)}`);
    const sha = fs.existsSync(demoModel) ? (await import('node:crypto')).createHash('sha256').update(demoBytes).digest('hex') : null;
    assert(first.info.sha256 === sha, `sha256 ${first.info.sha256} != ${sha}`);
    const before = modelRequests('/models/bitmamba-demo.bin');
    await page.reload();
    await page.waitForFunction(() => window.bitmambaDemo && window.bitmambaDemo.state === 'idle');
    const second = await loadViaUi(page, 'demo');
    const after = modelRequests('/models/bitmamba-demo.bin');
    assert(second.state === 'ready', `second load: ${JSON.stringify(second.error)}`);
    assert(second.info.source === 'cache' && second.info.cache.status === 'hit', `second load came from ${second.info.source}`);
    assert(after === before, `${after - before} network requests for the model on the second load`);
    const run = await generateViaUi(page, { prompt: PROMPT, seed: 9, maxTokens: 16 });
    const promptIds = await page.evaluate((p) => window.bitmambaDemo.model.tokenize(p).then(Array.from), PROMPT);
    sameTokens(run.tokens, nativeTokens(promptIds, { seed: 9, maxTokens: 16 }), 'after a cache load');
    return `second load from cache, 0 model requests (first ${first.info.timings.readMs.toFixed(0)} ms, cached ${second.info.timings.readMs.toFixed(0)} ms)`;
  } finally {
    await context.close();
  }
});

test('cross_origin_redirect_cors', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    const url = `${cdnOrigin}/resolve/main/model.bin`;
    const first = await loadViaUi(page, 'url', { url });
    assert(first.state === 'ready', `cross-origin load failed: ${JSON.stringify(first.error)}`);
    assert(first.info.threads > 1 && first.info.cache.status === 'stored', JSON.stringify(first.info.cache));
    const before = cdnRequests.length;
    await page.reload();
    await page.waitForFunction(() => window.bitmambaDemo && window.bitmambaDemo.state === 'idle');
    const second = await loadViaUi(page, 'url', { url });
    assert(second.state === 'ready' && second.info.source === 'cache', `second load: ${second.info && second.info.source}`);
    assert(cdnRequests.length === before, `${cdnRequests.length - before} requests to the other origin on the second load`);
    const blocked = await loadViaUi(page, 'url', { url: `${cdnOrigin}/no-cors/model.bin` });
    assert(blocked.error && blocked.error.code === 'network', `no CORS gave ${JSON.stringify(blocked.error)}`);
    return 'redirect + CORS from another origin loads under COEP and is cached; without CORS: network error';
  } finally {
    await context.close();
  }
});

test('no_content_length', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    const r = await loadViaUi(page, 'url', { url: '/test/no-length.bin' });
    assert(r.state === 'ready', `load failed: ${JSON.stringify(r.error)}`);
    assert(r.info.cache.status === 'stored', `not stored: ${JSON.stringify(r.info.cache)}`);
    return 'loaded and cached without Content-Length';
  } finally {
    await context.close();
  }
});

test('quota_loads_uncached', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    // Chromium's DevTools protocol can shrink the origin's quota below the model's size.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(isolatedServer.url).origin, quotaSize: 8 << 20 });
    const r = await loadViaUi(page, 'demo');
    assert(r.state === 'ready', `load failed: ${JSON.stringify(r.error)}`);
    assert(r.info.cache.status === 'skipped' && r.info.cache.reason === 'quota', `cache: ${JSON.stringify(r.info.cache)}`);
    const status = await page.textContent('#model-status');
    assert(/not stored: not enough storage space/.test(status), `the page says: ${status}`);
    const stored = await listStorage(page);
    assert(stored.every((f) => !f.endsWith('.bin') && !f.endsWith('.json')), `left ${stored.join(', ')}`);
    const run = await generateViaUi(page, { prompt: PROMPT, seed: 6, maxTokens: 8 });
    assert(run.tokens.length === 8, 'generation after an uncached load failed');
    return `quota 8 MiB: loaded without caching; the page says "${status.match(/not stored: not enough storage space( \([^)]*\))?/)[0]}"`;
  } finally {
    await context.close();
  }
});

test('arraybuffer_source_transferred', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    const r = await page.evaluate(async () => {
      const { BitMamba } = window.bitmambaDemo;
      const buffer = await (await fetch('models/bitmamba-demo.bin')).arrayBuffer();
      const size = buffer.byteLength;
      const model = await BitMamba.load(buffer);
      const out = { size, after: buffer.byteLength, source: model.info.source, cache: model.info.cache.status };
      const g = model.generate({ tokens: [464, 2106] }, { seed: 1, maxTokens: 4 });
      out.tokens = [];
      for await (const p of g) out.tokens.push(p.token);
      await model.dispose();
      return out;
    });
    assert(r.source === 'buffer' && r.cache === 'off', JSON.stringify(r));
    assert(r.after === 0, `the ArrayBuffer was copied, not transferred (${r.after} bytes left)`);
    sameTokens(r.tokens, nativeTokens([464, 2106], { seed: 1, maxTokens: 4 }), 'ArrayBuffer source');
    return `${r.size} bytes transferred (detached in the page), tokens equal the CLI's`;
  } finally {
    await context.close();
  }
});

const FAILURES = [
  ['/test/missing.bin', 'http_status'],
  ['/test/page.bin', 'not_a_model'],
  ['/test/truncated.bin', 'corrupt_model'],
  ['/test/code3.bin', 'corrupt_model'],
  ['/test/drop.bin', 'network'],
];

test('typed_errors_nothing_cached', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    const seen = [];
    for (const [url, code] of FAILURES) {
      const r = await loadViaUi(page, 'url', { url });
      assert(r.state === 'idle', `${url}: state ${r.state}`);
      assert(r.error && r.error.code === code, `${url}: expected ${code}, got ${JSON.stringify(r.error)}`);
      assert(r.banner === code, `${url}: the page shows ${r.banner}`);
      const stored = await listStorage(page);
      assert(stored.length === 0 || stored.every((f) => !f.endsWith('.bin') && !f.endsWith('.json')), `${url}: left ${stored.join(', ')}`);
      seen.push(`${url.split('/').pop()}→${code}`);
    }
    const ok = await loadViaUi(page, 'demo');
    assert(ok.state === 'ready', 'the page is not usable after the errors');
    return seen.join(', ');
  } finally {
    await context.close();
  }
});

test('abort_download', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    await page.fill('#model-url', '/test/slow.bin');
    await page.check('input[name=model][value=url]');
    const before = await page.evaluate(() => window.bitmambaDemo.loadsFinished ?? 0);
    await page.click('#load');
    await page.waitForFunction(() => /Downloading · [1-9]/.test(document.getElementById('progress-text').textContent));
    const progressText = await page.textContent('#progress-text');
    await page.click('#cancel-load');
    await page.waitForFunction((n) => (window.bitmambaDemo.loadsFinished ?? 0) > n, before);
    const error = await page.evaluate(() => window.bitmambaDemo.lastError);
    assert(error && error.code === 'aborted', `expected aborted, got ${JSON.stringify(error)}`);
    await page.waitForTimeout(200);
    const stored = await listStorage(page);
    assert(stored.every((f) => !f.endsWith('.bin') && !f.endsWith('.json')), `left ${stored.join(', ')}`);
    const ok = await loadViaUi(page, 'demo');
    assert(ok.state === 'ready', 'the page is not usable after cancelling');
    return `cancelled at "${progressText}"; nothing stored`;
  } finally {
    await context.close();
  }
});

test('stop_within_one_token_and_screenshot', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    assert((await loadViaUi(page, 'demo')).state === 'ready', 'load failed');
    // Far more tokens than the demo model makes before the screenshot and the click (it runs
    // at thousands of tokens per second), so Stop always ends it.
    await setSettings(page, { prompt: PROMPT, seed: 11, maxTokens: 1000000 });
    const before = await page.evaluate(() => window.bitmambaDemo.runsCompleted ?? 0);
    await page.click('#generate');
    await page.waitForFunction(() => window.bitmambaDemo.lastRun && window.bitmambaDemo.lastRun.tokens.length >= 60);
    const shot = path.join(artifacts, 'mid-generation.png');
    await page.screenshot({ path: shot, fullPage: true });
    await page.click('#stop');
    await page.waitForFunction((n) => (window.bitmambaDemo.runsCompleted ?? 0) > n, before);
    const run = await page.evaluate(() => window.bitmambaDemo.lastRun);
    assert(run.stats && run.stats.stopReason === 'stopped', `stop reason ${run.stats && run.stats.stopReason}`);
    assert(run.stopRequestedAt, 'no stop time recorded');
    const after = run.tokenTimes.filter((t) => t > run.stopRequestedAt).length;
    assert(after <= 1, `${after} tokens were generated after Stop`);
    assert(run.tokens.length < 1000000, 'ran to the end');
    return `${after} token(s) after Stop (of ${run.tokens.length}); screenshot ${path.relative(ROOT, shot)}`;
  } finally {
    await context.close();
  }
});

test('local_file_and_text_not_html', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, plainServer);
    const r = await loadViaUi(page, 'file', { file: demoModel });
    assert(r.state === 'ready' && r.info.source === 'file', `file load: ${JSON.stringify(r.error)}`);
    const prompt = '<img src=x onerror="window.pwned=1"><b>bold</b>';
    await generateViaUi(page, { prompt, seed: 2, maxTokens: 20 });
    const found = await page.evaluate(() => ({
      elements: document.querySelectorAll('#output img, #output b').length,
      pwned: window.pwned === 1,
      echo: document.getElementById('output-prompt').textContent,
    }));
    assert(found.elements === 0 && !found.pwned, 'text was inserted as HTML');
    assert(found.echo === prompt, 'the prompt is not shown verbatim');
    const compact = await loadViaUi(page, 'file', { file: compactModel });
    assert(compact.state === 'ready' && compact.info.source === 'file', `compact file load: ${JSON.stringify(compact.error)}`);
    const settings = { prompt: PROMPT, seed: 5, maxTokens: 24 };
    const run = await generateViaUi(page, settings);
    const promptIds = await page.evaluate((p) => window.bitmambaDemo.model.tokenize(p).then(Array.from), PROMPT);
    sameTokens(run.tokens, nativeTokens(promptIds, settings, compactModel), 'compact file vs CLI');
    return 'local .bin loaded; prompt and output inserted as text; a local compact (q8) file gives the CLI\'s tokens';
  } finally {
    await context.close();
  }
});

test('api_logits_snapshot_tokenizer', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    assert((await loadViaUi(page, 'demo')).state === 'ready', 'load failed');
    const tokens = [464, 2106, 286, 262];
    const logitsFile = path.join(args.out, 'logits.f32');
    cli(['logits', demoModel, '--tokens', tokens.join(' '), '--out', logitsFile]);
    const raw = fs.readFileSync(logitsFile);
    const all = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
    const vocab = all.length / tokens.length;
    const want = all.subarray(all.length - vocab);
    const got = await page.evaluate((t) => window.bitmambaDemo.model.logits(t).then(Array.from), tokens);
    assert(got.length === vocab, `logits length ${got.length} != ${vocab}`);
    let maxDiff = 0;
    for (let i = 0; i < vocab; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
    assert(maxDiff <= 1e-4, `logits differ from the CLI's by up to ${maxDiff}`);

    const result = await page.evaluate(async () => {
      const m = window.bitmambaDemo.model;
      const collect = async (g) => { const out = []; for await (const p of g) if (p.token !== null) out.push(p.token); return out; };
      await collect(m.generate({ tokens: [464, 2106] }, { seed: 4, maxTokens: 5 }));
      const snap = await m.snapshot();
      const a = await collect(m.generate({ tokens: [286] }, { seed: 8, maxTokens: 10, continue: true }));
      await m.restore(snap);
      const b = await collect(m.generate({ tokens: [286] }, { seed: 8, maxTokens: 10, continue: true }));
      const text = 'Hello, world! Ünïcödé ☃ and 123.';
      const ids = await m.tokenize(text);
      const back = await m.detokenize(ids);
      let aborted = null;
      try {
        const c = new AbortController();
        const g = m.generate('abc', { maxTokens: 3000, signal: c.signal });
        let n = 0;
        for await (const p of g) if (++n === 5) c.abort();
      } catch (e) {
        aborted = e.code;
      }
      let bad = null;
      try {
        await collect(m.generate('abc', { topP: 2 }));
      } catch (e) {
        bad = e.code;
      }
      return { a, b, snapBytes: snap.length, text, back, aborted, bad };
    });
    sameTokens(result.b, result.a, 'after restore()');
    assert(result.back === result.text, `detokenize(tokenize(x)) gave ${JSON.stringify(result.back)}`);
    assert(result.aborted === 'aborted', `an aborted signal gave ${result.aborted}`);
    assert(result.bad === 'invalid_argument', `top_p 2 gave ${result.bad}`);
    return `logits max |diff| ${maxDiff}; snapshot ${result.snapBytes} bytes restores; tokenizer round-trips; abort and bad params typed`;
  } finally {
    await context.close();
  }
});

test('api_score_perplexity_logprobs', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, isolatedServer);
    assert((await loadViaUi(page, 'demo')).state === 'ready', 'load failed');
    const text = 'The quick brown fox jumps over the lazy dog.\n\n = Caf\u00e9 =  \t12.5 %\n';
    const item = { context: 'Answer: ', choices: ['yes', 'no', 'maybe'], label: 2 };
    const textFile = path.join(args.out, 'ppl-text.txt');
    const tasksFile = path.join(args.out, 'ppl-tasks.jsonl');
    fs.writeFileSync(textFile, text);
    fs.writeFileSync(tasksFile, JSON.stringify(item) + '\n');
    const ppl = JSON.parse(cli(['perplexity', demoModel, '--text-file', textFile, '--json']));
    const scored = JSON.parse(cli(['score', demoModel, '--tasks', tasksFile, '--json']));
    const got = await page.evaluate(async ({ text, item }) => {
      const m = window.bitmambaDemo.model;
      const progress = [];
      const p = await m.perplexity(text, { onProgress: (e) => progress.push(e) });
      const logliks = Array.from(await m.score(item.context, item.choices));
      const pieces = [];
      for await (const piece of m.generate('Once upon a time', { temperature: 0, maxTokens: 4, logprobs: 2 })) pieces.push(piece);
      let bad = null;
      try { await m.score('a', []); } catch (e) { bad = e.code; }
      return { p, progress, logliks, pieces, bad };
    }, { text, item });
    for (const key of ['tokens', 'nll', 'words', 'bytes']) assert(got.p[key] === ppl[key], `perplexity ${key}: ${got.p[key]} vs CLI ${ppl[key]}`);
    assert(got.progress.at(-1)?.done === ppl.tokens, `progress ${JSON.stringify(got.progress)}`);
    assert(JSON.stringify(got.logliks) === JSON.stringify(scored.results[0].loglik), `score ${got.logliks} vs CLI ${scored.results[0].loglik}`);
    for (const piece of got.pieces.filter((x) => x.token !== null)) {
      assert(piece.topLogprobs.length === 2 && piece.topLogprobs[0].token === piece.token &&
        piece.topLogprobs[0].logprob === piece.logprob && piece.logprob <= 0, `greedy piece ${JSON.stringify(piece)}`);
    }
    assert(got.bad === 'invalid_argument', `score with no continuations gave ${got.bad}`);
    return `perplexity NLL ${got.p.nll} and score log-likelihoods equal the CLI's; greedy logprobs are the top ones`;
  } finally {
    await context.close();
  }
});

test('service_worker_isolation_shim', async () => {
  const { context, page } = await openBrowser();
  try {
    await openDemo(page, plainServer);
    assert(await page.evaluate(() => !self.crossOriginIsolated), 'should start without isolation');
    await page.click('#coi-enable');
    await page.waitForFunction(() => self.crossOriginIsolated === true, null, { timeout: 20000 });
    await page.waitForFunction(() => window.bitmambaDemo && window.bitmambaDemo.state === 'idle');
    const r = await loadViaUi(page, 'demo');
    assert(r.state === 'ready', `load under the service worker failed: ${JSON.stringify(r.error)}`);
    assert(r.info.threads > 1, `expected threads under the shim, got ${r.info.threads} (${r.info.threadsReason})`);
    const run = await generateViaUi(page, { prompt: PROMPT, seed: 3, maxTokens: 12 });
    assert(run.tokens.length > 0, 'no tokens');
    return `isolated via the service worker; ${r.info.threads} threads`;
  } finally {
    await context.close();
  }
});

// 20 cycles of load, generate and dispose in one page: every worker ends,
// and the page's memory (performance.measureUserAgentSpecificMemory, which
// counts its workers too) does not grow from the 2nd cycle to the 20th.
const SOAK_CYCLES = 20;
const SOAK_GROWTH_LIMIT = 16 << 20;  // one leaked model worker would add its ~40 MiB heap

test('soak_load_generate_dispose', async () => {
  // Eager: the measurement otherwise waits for the next garbage collection (up to 20 s).
  const { context, page } = await openBrowser(['--enable-blink-features=ForceEagerMeasureMemory']);
  try {
    const workers = { started: 0, ended: 0, model: 0 };
    page.on('worker', (w) => {
      workers.started++;
      if (new URL(w.url()).pathname === '/worker.js') workers.model++;
      w.on('close', () => workers.ended++);
    });
    await openDemo(page, isolatedServer);
    const prompt = [464, 2106, 286, 262];
    const want = nativeTokens(prompt, { seed: 1, maxTokens: 16 });
    const allEnded = async (when) => {
      const end = Date.now() + 10000;
      while (workers.ended < workers.started && Date.now() < end) await page.waitForTimeout(50);
      assert(workers.ended === workers.started, `${when}: ${workers.started - workers.ended} of ${workers.started} workers still alive after dispose()`);
    };
    const measure = () => page.evaluate(async () => (typeof performance.measureUserAgentSpecificMemory === 'function'
      ? (await performance.measureUserAgentSpecificMemory()).bytes : null));
    const memory = {};
    const started = Date.now();
    for (let cycle = 1; cycle <= SOAK_CYCLES; cycle++) {
      const tokens = await page.evaluate(async (p) => {
        const model = await window.bitmambaDemo.BitMamba.load('models/bitmamba-demo.bin', { cache: true });
        const out = [];
        for await (const piece of model.generate({ tokens: p }, { seed: 1, maxTokens: 16 })) if (piece.token !== null) out.push(piece.token);
        await model.dispose();
        return out;
      }, prompt);
      sameTokens(tokens, want, `cycle ${cycle}`);
      await allEnded(`cycle ${cycle}`);
      if (cycle === 2 || cycle === SOAK_CYCLES) memory[cycle] = await measure();
    }
    const seconds = (Date.now() - started) / 1000;
    // The same measure with one model alive: it must see a worker's heap, or the check above proves nothing.
    const alive = await page.evaluate(async () => {
      const model = await window.bitmambaDemo.BitMamba.load('models/bitmamba-demo.bin', { cache: true });
      const { bytes } = await performance.measureUserAgentSpecificMemory();
      await model.dispose();
      return bytes;
    });
    assert(alive - memory[SOAK_CYCLES] > SOAK_GROWTH_LIMIT, `with a model loaded the measure is only ${alive} bytes: it does not see the worker's heap`);
    assert(workers.model === SOAK_CYCLES + 1, `${workers.model} model workers for ${SOAK_CYCLES} loads`);
    assert(memory[2] !== null, 'no performance.measureUserAgentSpecificMemory in this isolated page');
    await allEnded('the last load');
    const growth = memory[SOAK_CYCLES] - memory[2];
    const mib = (b) => (b / (1 << 20)).toFixed(1);
    assert(growth < SOAK_GROWTH_LIMIT, `memory grew by ${mib(growth)} MiB from cycle 2 to ${SOAK_CYCLES}`);
    return `${SOAK_CYCLES} cycles in ${seconds.toFixed(1)} s, tokens equal the CLI's each time; ${SOAK_CYCLES} model workers ` +
      `(${workers.started} workers in all, with hash and engine threads) started and ended, none left; ` +
      `memory after cycle 2 ${mib(memory[2])} MiB, after ${SOAK_CYCLES} ${mib(memory[SOAK_CYCLES])} MiB (${growth >= 0 ? '+' : ''}${mib(growth)} MiB); ` +
      `${mib(alive)} MiB with a model loaded`;
  } finally {
    await context.close();
  }
});

conversationTests({
  test, openBrowser, openDemo, loadViaUi, setSettings, server: isolatedServer, nativeTokens, cli, demoModel, artifacts,
  assert, sameTokens, ROOT,
});

let passed = 0;
let failed = 0;
for (const { name, fn } of tests) {
  if (args.only && !args.only.has(name)) continue;
  const started = Date.now();
  try {
    const note = await fn();
    passed++;
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)${note ? ': ' + note : ''}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name} (${((Date.now() - started) / 1000).toFixed(1)} s): ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`);
  }
}

isolatedServer.server.close();
plainServer.server.close();
cdnServer.server.close();
for (const dir of userDirs) fs.rmSync(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
