#!/usr/bin/env node
// The browser checks of page/checks.js in one engine, against the native CLI
// and the engine table of docs/browser.md, then the demo page in that engine.
// For Chromium it then runs the Chromium-only tests of run.mjs (quota through
// DevTools, file chooser, service worker, screenshots).
//
//   node tests/browser/engines.mjs --browser chromium|firefox|webkit \
//        [--cli build/release/cli/bitmamba] [--dist build/wasm/dist] [--out DIR] [--executable PATH]
//
// A missing browser fails; only --skip-engine NAME[,NAME] or
// BITMAMBA_SKIP_ENGINES=NAME[,NAME] skips one (exit 77). Exits 77 without a
// wasm build, as run.mjs does.

import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CONTENT_SECURITY_POLICY, createHandler, startServer } from '../../scripts/serve.mjs';
import { driverFor } from '../../scripts/drivers/index.mjs';
import { compareWithTable, readEngineTable } from './engine-table.mjs';
import { testModels, PROMPT_TOKENS, SAMPLING_CASES } from './test-models.mjs';
import { resumeRoutes } from './resume-routes.mjs';
import { parseOptions } from '../common/options.mjs';
import crypto from 'node:crypto';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const SKIP = 77;
// A visit whose page posts nothing for this long hung (Firefox ESR has now
// and then never started a module worker); it is visited again, at most twice.
const HANG_MS = 90000;
const MAX_RETRIES = 2;

const args = parseOptions(process.argv.slice(2), {
  browser: null, executable: null, 'skip-engine': process.env.BITMAMBA_SKIP_ENGINES ?? '',
  cli: path.join(ROOT, 'build', 'release', 'cli', 'bitmamba'),
  dist: path.join(ROOT, 'build', 'wasm', 'dist'),
  out: path.join(ROOT, 'build', 'browser-tests'),
}, ['cli', 'dist', 'out']);
const engine = args.browser;
if (args['skip-engine'].split(',').map((s) => s.trim()).includes(engine)) {
  console.log(`${engine}: skipped on request (--skip-engine / BITMAMBA_SKIP_ENGINES)`);
  process.exit(SKIP);
}
if (!fs.existsSync(path.join(args.dist, 'bitmamba-simd128.wasm'))) {
  console.log(`browser tests skipped: no wasm build in ${args.dist} (scripts/build-wasm.sh)`);
  process.exit(SKIP);
}
const driver = await driverFor(engine);
const executable = args.executable ?? driver.DEFAULT_EXECUTABLE;
if (!fs.existsSync(executable)) {
  console.log(`FAIL ${engine}: no browser at ${executable}; scripts/setup.sh installs it (or skip it with --skip-engine ${engine})`);
  process.exit(1);
}
const row = readEngineTable(path.join(ROOT, 'docs', 'browser.md'))[engine];

const out = path.join(args.out, engine);
fs.mkdirSync(out, { recursive: true });

const modelsDir = path.join(args.out, 'models');
// The demo model, its broken variants, its compact form and what the native CLI makes of them.
const { cli, demoModel, demoBytes, truncated, code3, compactModel, changedModel, nativeTokens, stopCase } =
  testModels(args.cli, modelsDir);
const changedBytes = fs.readFileSync(changedModel);


function nativeLogits(tokens) {
  const file = path.join(out, 'logits.f32');
  cli(['logits', demoModel, '--tokens', tokens.join(' '), '--out', file]);
  const raw = fs.readFileSync(file);
  const vocab = raw.length / 4 / tokens.length;
  return raw.subarray(raw.length - vocab * 4).toString('base64');  // the last position's row
}

const FAILURES = [
  ['/test/missing.bin', 'http_status'],
  ['/test/page.bin', 'not_a_model'],
  ['/test/truncated.bin', 'corrupt_model'],
  ['/test/code3.bin', 'corrupt_model'],
];
const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const expectations = JSON.stringify({
  model: '/models/bitmamba-demo.bin',
  prompt: PROMPT_TOKENS,
  cases: SAMPLING_CASES.map((settings) => ({ settings, tokens: nativeTokens(PROMPT_TOKENS, settings) })),
  logits: { tokens: PROMPT_TOKENS.slice(0, 4), f32: nativeLogits(PROMPT_TOKENS.slice(0, 4)) },
  compact: { model: '/models/bitmamba-demo.q8.bin', settings: SAMPLING_CASES[2], tokens: nativeTokens(PROMPT_TOKENS, SAMPLING_CASES[2], compactModel) },
  stop: stopCase(PROMPT_TOKENS, SAMPLING_CASES[0], out),
  long: { settings: { ...SAMPLING_CASES[0], maxTokens: 400 }, tokens: nativeTokens(PROMPT_TOKENS, { ...SAMPLING_CASES[0], maxTokens: 400 }) },
  failures: FAILURES,
  // What every resumed download must end with: the file's SHA-256 and the CLI's tokens for it.
  resume: {
    settings: SAMPLING_CASES[0],
    original: { size: demoBytes.length, sha256: sha256(demoBytes), tokens: nativeTokens(PROMPT_TOKENS, SAMPLING_CASES[0]) },
    changed: { size: changedBytes.length, sha256: sha256(changedBytes), tokens: nativeTokens(PROMPT_TOKENS, SAMPLING_CASES[0], changedModel) },
  },
});

// The test server: the site with COOP/COEP and a CSP that reports here, the
// check page under /checks/, and the routes the checks use.
const csp = `${CONTENT_SECURITY_POLICY}; report-uri /test/csp-report`;
const site = createHandler({ web: path.join(ROOT, 'web'), dist: args.dist, models: modelsDir, isolation: true, csp });
const checkPage = createHandler({ web: path.join(HERE, 'page'), dist: args.dist, models: modelsDir, isolation: true, csp });
const coep = { 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Opener-Policy': 'same-origin' };
const modelRequests = { '/models/bitmamba-demo.bin': 0, '/models/bitmamba-demo.q8.bin': 0 };
let results = [];
let lastPost = Date.now();
const cspReports = [];
const resume = resumeRoutes({ original: demoBytes, changed: changedBytes, coep });

function readBody(req) {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => resolve(body));
  });
}

async function route(req, res) {
  const url = new URL(req.url, 'http://x');
  const send = (status, type, body) => { res.writeHead(status, { 'Content-Type': type, ...coep }); res.end(body); };
  if (url.pathname in modelRequests) modelRequests[url.pathname]++;
  if (resume(req, res, url)) return;
  switch (url.pathname) {
    case '/test/expect.json': return send(200, 'application/json', expectations);
    case '/test/requests': return send(200, 'application/json', JSON.stringify(modelRequests));
    case '/test/result':
      results.push(JSON.parse(await readBody(req)));
      lastPost = Date.now();
      return send(204, 'text/plain', '');
    case '/test/csp-report':
      cspReports.push(await readBody(req));
      return send(204, 'text/plain', '');
    case '/test/missing.bin': return send(404, 'text/html', '<!doctype html><title>404</title><h1>Not Found</h1>');
    case '/test/page.bin': return send(200, 'text/html', '<!DOCTYPE html><html><body>Sign in to continue</body></html>\n'.repeat(50));
    case '/test/truncated.bin': return send(200, 'application/octet-stream', truncated);
    case '/test/code3.bin': return send(200, 'application/octet-stream', code3);
    default:
      if (url.pathname.startsWith('/checks/')) {
        req.url = req.url.slice('/checks'.length);
        return checkPage(req, res);
      }
      return site(req, res);
  }
}
const { server, url: origin } = await startServer({ port: 0, handler: route });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let passed = 0;
let failed = 0;
function report(name, ok, note) {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${engine} ${name}${note ? ': ' + note : ''}`);
}

// One visit of the check page; null when it hung.
async function visitChecks(browser) {
  results = [];
  lastPost = Date.now();
  browser.goto(`${origin}checks/`).catch(() => {});  // the page reports by POST; a hung load is caught below
  for (;;) {
    if (results.some((r) => r.done)) return results.filter((r) => !r.done);
    if (Date.now() - lastPost > HANG_MS) return null;
    await sleep(200);
  }
}

async function runChecks(browser) {
  for (let attempt = 0; ; attempt++) {
    const got = await visitChecks(browser);
    if (got) return got;
    const last = results.at(-1)?.name ?? 'the start';
    if (attempt === MAX_RETRIES) throw new Error(`the check page hung after ${last} on ${MAX_RETRIES + 1} visits`);
    console.log(`retry: ${engine} check page hung after ${last} (nothing posted for ${HANG_MS / 1000} s); visiting it again`);
  }
}

// A page that stopped making progress (as opposed to one that reported a failure).
class PageHung extends Error {}

// The demo page through its own controls: load the demo model, generate,
// compare with the CLI, and read what it says about reduced modes.
async function checkDemo(browser) {
  await browser.goto(origin);
  const poll = async (expression, what, ms = 60000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await browser.evaluate(expression)) return;
      await sleep(250);
    }
    const shows = await browser.evaluate(`({ status: document.getElementById('model-status').textContent,
      progress: document.getElementById('progress').hidden ? null : document.getElementById('progress').textContent,
      error: window.bitmambaDemo && window.bitmambaDemo.lastError })`).catch((e) => e.message);
    throw new PageHung(`${what} did not happen in ${ms / 1000} s; the page shows ${JSON.stringify(shows)}`);
  };
  await poll('window.bitmambaDemo && window.bitmambaDemo.state === "idle"', 'the demo page starting');
  await browser.evaluate(`(() => {
    document.querySelector('input[name=model][value=demo]').click();
    for (const [id, v] of [['prompt', 'The history of the printing press begins'], ['seed', '42'], ['max-tokens', '24']]) document.getElementById(id).value = v;
    document.getElementById('load').click();
  })()`);
  await poll('(window.bitmambaDemo.loadsFinished ?? 0) > 0', 'loading the demo model');
  const info = await browser.evaluate('window.bitmambaDemo.model && window.bitmambaDemo.model.info');
  if (!info) throw new Error(`the demo page did not load: ${JSON.stringify(await browser.evaluate('window.bitmambaDemo.lastError'))}`);
  await browser.evaluate('document.getElementById("generate").click()');
  await poll('(window.bitmambaDemo.runsCompleted ?? 0) > 0', 'generating');
  const run = await browser.evaluate('({ tokens: window.bitmambaDemo.lastRun.tokens })');
  const prompt = await browser.evaluate('window.bitmambaDemo.model.tokenize("The history of the printing press begins").then(Array.from)');
  const want = nativeTokens(prompt, { seed: 42, maxTokens: 24 });
  if (JSON.stringify(run.tokens) !== JSON.stringify(want)) throw new Error(`demo tokens ${run.tokens} differ from the CLI's ${want}`);
  const note = await browser.evaluate('document.getElementById("degraded-note").hidden ? "" : document.getElementById("degraded-text").textContent');
  const shot = path.join(out, 'demo.png');
  await browser.screenshot(shot);
  const uncached = row.cache === 'none';
  if (uncached !== note.includes('cannot keep the model; it downloads each visit')) {
    throw new Error(`the demo page says "${note}" with model cache ${row.cache}`);
  }
  if ((row.threads === 'one') !== note.includes('one thread')) throw new Error(`the demo page says "${note}" with threads ${row.threads}`);
  return `${run.tokens.length} tokens equal the CLI's; ${note ? `it says "${note}"` : 'no reduced mode'}; screenshot ${path.relative(ROOT, shot)}`;
}

// A page reload in the middle of a download (page/reload.html): the first
// visit starts loading a model whose answer stalls halfway, the second visit
// loads the same URL. With a cache it must resume from the partial file
// (read back, then one 206 for the rest); without one it starts over.
async function checkReload(browser) {
  const run = `reload-${Date.now().toString(36)}`;
  const model = `/test/resume/model.bin?run=${run}&drop=0.5&stall=1`;
  const log = () => resume.log(run);
  await browser.goto(`${origin}checks/reload.html?model=${encodeURIComponent(model)}`);
  const end = Date.now() + 60000;
  while (!(log()[0]?.sent > 0 && (await browser.evaluate('window.loadedBytes')) > 0)) {
    if (Date.now() > end) throw new PageHung(`the download did not start: ${await browser.evaluate('window.loadError ?? null')}`);
    await sleep(100);
  }
  // The page may still be taking in the stalled answer (its worker waits for
  // the engine before it reads on); with a cache, wait until the progress
  // file notes every byte sent, so that the figure below is the loader's.
  const noted = `(async () => { try {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('bitmamba-models');
    for await (const [name, handle] of dir.entries()) {
      if (name.startsWith('partial-') && name.endsWith('.json')) return JSON.parse(await (await handle.getFile()).text()).loaded;
    }
  } catch {} return null; })()`;
  const settle = Date.now() + 30000;
  if (row.cache === 'none') await sleep(1500);
  else while ((await browser.evaluate(noted)) !== log()[0].sent && Date.now() < settle) await sleep(200);
  const before = await browser.evaluate('window.loadedBytes');
  results = [];
  lastPost = Date.now();
  await browser.evaluate('location.reload()').catch(() => {});  // the page goes away under the call
  while (!results.some((r) => r.name === 'resume_after_reload')) {
    if (Date.now() - lastPost > HANG_MS) throw new PageHung('the load after the reload posted nothing');
    await sleep(100);
  }
  const r = results.find((x) => x.name === 'resume_after_reload');
  if (!r.ok) throw new Error(r.error);
  const want = JSON.parse(expectations).resume.original;
  if (JSON.stringify(r.tokens) !== JSON.stringify(want.tokens)) throw new Error(`tokens ${r.tokens} differ from the CLI's ${want.tokens}`);
  const [first, second] = log();
  const sentTwice = log().reduce((n, e) => n + e.sent, 0) - want.size;
  const figures = `${r.seconds.toFixed(2)} s after the reload, ${sentTwice} bytes sent twice`;
  if (row.cache === 'none') {
    if (second?.status !== 200 || r.download.readBackBytes !== 0) throw new Error(`without a cache: answers ${JSON.stringify(log())}`);
    return `N/A here: no OPFS sync access handles, so nothing is kept; the load after the reload starts over and gives the CLI's tokens (${figures})`;
  }
  if (r.sha256 !== want.sha256) throw new Error(`SHA-256 ${r.sha256}, the file's ${want.sha256}`);
  const readBack = r.download.readBackBytes;
  if (!(readBack > 0) || second?.status !== 206 || second.range !== `bytes=${readBack}-` || log().length !== 2) {
    throw new Error(`read back ${readBack} bytes; answers ${JSON.stringify(log())}`);
  }
  return `${first.sent} bytes arrived (${before} shown) before the reload; ${readBack} read back from the partial file, ` +
    `the rest by one 206; same SHA-256 and tokens; ${figures}`;
}

// Runs a page check again if it hung, at most MAX_RETRIES times, logged; a
// check that failed is never retried.
async function retryIfHung(what, run) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await run();
    } catch (e) {
      if (!(e instanceof PageHung) || attempt === MAX_RETRIES) throw e;
      console.log(`retry: ${engine} ${what} hung (${e.message}); visiting it again`);
    }
  }
}

const started = Date.now();
let browser = null;
try {
  browser = await driver.launch({ executable });
  const checks = await runChecks(browser);
  for (const r of checks) report(r.name, r.ok, `${r.ok ? r.note : r.error} (${r.seconds.toFixed(1)} s)`);
  const load = checks.find((r) => r.name === 'load');
  const cache = checks.find((r) => r.name === 'cache');
  const compact = checks.find((r) => r.name === 'compact_q8_file');
  if (load?.ok && cache?.ok && compact?.ok) {
    const problems = compareWithTable(row, load.info, cache.mode);
    if (compact.mode !== cache.mode) problems.push(`the compact file's cache mode is ${compact.mode}, the plain file's ${cache.mode}`);
    report('modes_match_docs_table', problems.length === 0,
      problems.join('; ') || `${row.variant}, ${row.threads} thread(s), cache ${row.cache}, as docs/browser.md says for ${row.label}`);
  } else {
    report('modes_match_docs_table', false, 'the load, cache or compact file check failed');
  }
  await sleep(300);  // reports are sent after the violation
  report('no_csp_report', cspReports.length === 0, cspReports.join(' | ') || 'no CSP violation reported by the page or its workers');
  try {
    report('resume_after_reload', true, await retryIfHung('reload mid-download', () => checkReload(browser)));
  } catch (e) {
    report('resume_after_reload', false, e.message);
  }
  try {
    report('demo_page', true, await retryIfHung('demo page', () => checkDemo(browser)));
  } catch (e) {
    report('demo_page', false, e.message);
  }
} catch (e) {
  report('engine', false, e.stack ?? e.message);
} finally {
  await browser?.close();
  server.close();
}
console.log(`${engine}: ${passed} passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(0)} s`);

let status = failed ? 1 : 0;
if (engine === 'chromium') {
  const r = spawnSync(process.execPath, [path.join(HERE, 'run.mjs'), '--cli', args.cli, '--dist', args.dist,
    '--out', args.out, '--chromium', executable], { stdio: 'inherit' });
  if (r.status !== 0) status = 1;
}
process.exit(status);
