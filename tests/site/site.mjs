#!/usr/bin/env node
// The deployable site (scripts/build-site.sh --with-demo-model) as static
// hosts serve it, in Chromium: the demo page loads the offline demo model
// through its own controls and generates the native CLI's tokens.
//
//   node tests/site/site.mjs --check plain|service-worker|headers --site DIR [--cli PATH] [--out DIR]
//
//   plain           python3 -m http.server, no special headers: one thread
//   service-worker  the same server; the page's opt-in isolation service
//                   worker is turned on and the page reloads: threads
//   headers         a static server sending the site's own _headers file: threads at once
//
// Exits 77 (skipped) without the site or Chromium.

import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { launch, DEFAULT_EXECUTABLE } from '../../scripts/drivers/chromium.mjs';
import { testModels } from '../browser/test-models.mjs';
import { serveDir } from '../package/static-server.mjs';
import { parseOptions } from '../common/options.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PROMPT_TEXT = 'The history of the printing press begins';
const SETTINGS = { seed: 42, maxTokens: 24 };

const args = parseOptions(process.argv.slice(2), {
  check: null, site: null, chromium: DEFAULT_EXECUTABLE,
  cli: path.join(ROOT, 'build', 'release', 'cli', 'bitmamba'),
  out: path.join(ROOT, 'build', 'site-tests'),
}, ['cli', 'out', 'site']);
if (!args.site || !fs.existsSync(path.join(args.site, 'models', 'bitmamba-demo.bin'))) {
  console.log(`site tests skipped: no site with the demo model at ${args.site} (scripts/build-site.sh --with-demo-model)`);
  process.exit(77);
}
if (!fs.existsSync(args.chromium)) {
  console.log(`site tests skipped: no Chromium at ${args.chromium}`);
  process.exit(77);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// python3 -m http.server on a free port: what "any static host" means here.
function pythonServer(dir) {
  const child = spawn('python3', ['-u', '-m', 'http.server', '--bind', '127.0.0.1', '--directory', dir, '0'],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      const port = text.match(/port (\d+)/)?.[1];
      if (port) resolve({ url: `http://127.0.0.1:${port}/`, close: async () => child.kill() });
    });
    child.on('exit', (code) => reject(new Error(`python3 -m http.server exited with ${code}`)));
  });
}

// The headers of the _headers file's "/*" block (the Netlify / Cloudflare Pages format).
function readHeadersFile(file) {
  const headers = {};
  let inAll = false;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    if (!/^\s/.test(line)) inAll = line.trim() === '/*';
    else if (inAll) {
      const at = line.indexOf(':');
      headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
  }
  return headers;
}

// Evaluates until `expression` is truthy; a reload in between is retried.
async function poll(browser, expression, what, ms = 90000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await browser.evaluate(expression).catch(() => false)) return;
    await sleep(250);
  }
  const shows = await browser.evaluate('window.bitmambaDemo && window.bitmambaDemo.lastError').catch((e) => e.message);
  throw new Error(`${what} did not happen in ${ms / 1000} s (last error on the page: ${JSON.stringify(shows)})`);
}

// The demo page through its controls: the offline demo model, a prompt, Generate.
async function loadAndGenerate(browser) {
  await poll(browser, 'window.bitmambaDemo && window.bitmambaDemo.state === "idle"', 'the demo page starting');
  await browser.evaluate(`(() => {
    document.querySelector('input[name=model][value=demo]').click();
    for (const [id, v] of [['prompt', ${JSON.stringify(PROMPT_TEXT)}], ['seed', '${SETTINGS.seed}'], ['max-tokens', '${SETTINGS.maxTokens}']]) {
      document.getElementById(id).value = v;
    }
    document.getElementById('load').click();
  })()`);
  await poll(browser, '(window.bitmambaDemo.loadsFinished ?? 0) > 0', 'loading the demo model');
  const info = await browser.evaluate('window.bitmambaDemo.model && window.bitmambaDemo.model.info');
  if (!info) throw new Error(`the demo model did not load: ${JSON.stringify(await browser.evaluate('window.bitmambaDemo.lastError'))}`);
  await browser.evaluate('document.getElementById("generate").click()');
  await poll(browser, '(window.bitmambaDemo.runsCompleted ?? 0) > 0', 'generating');
  const tokens = await browser.evaluate('window.bitmambaDemo.lastRun.tokens');
  const prompt = await browser.evaluate(`window.bitmambaDemo.model.tokenize(${JSON.stringify(PROMPT_TEXT)}).then(Array.from)`);
  return { info, tokens, prompt, isolated: await browser.evaluate('self.crossOriginIsolated') };
}

const CHECKS = {
  plain: { server: () => pythonServer(args.site), threads: (n) => n === 1, want: 'one thread' },
  'service-worker': {
    server: () => pythonServer(args.site),
    threads: (n) => n > 1,
    want: 'threads after the service worker is turned on',
    async before(browser) {
      await poll(browser, 'window.bitmambaCoi && window.bitmambaCoi.available()', 'the isolation service worker being offered');
      await browser.evaluate('window.bitmambaCoi.enable()').catch(() => {});  // it reloads the page
      await poll(browser, 'self.crossOriginIsolated === true', 'isolation after turning on the service worker', 30000);
    },
  },
  headers: {
    server: () => serveDir({ root: args.site, headers: readHeadersFile(path.join(args.site, '_headers')) }),
    threads: (n) => n > 1,
    want: 'threads at once from the _headers file',
  },
};

async function run() {
  const check = CHECKS[args.check];
  if (!check) throw new Error(`--check must be one of ${Object.keys(CHECKS).join(', ')}`);
  const { nativeTokens } = testModels(args.cli, path.join(args.out, `models-${args.check}`));
  const started = Date.now();
  const server = await check.server();
  let browser;
  try {
    browser = await launch({ executable: args.chromium });
    await browser.goto(server.url);
    await check.before?.(browser);
    const got = await loadAndGenerate(browser);
    const want = nativeTokens(got.prompt, SETTINGS);
    const problems = [];
    if (JSON.stringify(got.tokens) !== JSON.stringify(want)) problems.push(`tokens ${got.tokens} differ from the CLI's ${want}`);
    if (!check.threads(got.info.threads)) problems.push(`${got.info.threads} thread(s) (${got.info.threadsReason}), not ${check.want}`);
    const name = `site_${args.check}`;
    if (problems.length) {
      console.log(`FAIL ${name}: ${problems.join('; ')}`);
      return 1;
    }
    console.log(`ok   ${name}: ${got.tokens.length} tokens equal the CLI's, ${got.info.threads} thread(s), ` +
      `cross-origin isolated: ${got.isolated} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return 0;
  } finally {
    await browser?.close();
    await server.close();
  }
}

process.exit(await run());
