#!/usr/bin/env node
// One way a web developer uses the npm package, tested end to end: the packed
// tarball is installed into a fresh app (npm install from the file, offline),
// the app is built the way that consumer builds it, served by a plain static
// server with COOP/COEP, and Chromium generates tokens that must equal the
// native CLI's, with two threads (so the engine's pthread glue ran too).
//
//   node tests/package/consumers.mjs --consumer importmap|esbuild|vite|cdn \
//        --tarball build/package/bitmamba-web-X.Y.Z.tgz [--cli build/release/cli/bitmamba] [--out DIR]
//
//   importmap  node_modules served as they are, the page maps 'bitmamba-web' with an import map
//   esbuild    the app bundled by esbuild: first a typed error naming the missing worker, then
//              with the package's files copied beside the bundle (no option)
//   vite       `vite build`; the package's files in public/, found through the workerUrl option
//   cdn        the package from a second origin at /npm/bitmamba-web@X.Y.Z/ (CORS + CORP), as a CDN
//              serves it: a blob worker of the page's origin imports the worker module
//
// Exits 77 (skipped) without the wasm build or Chromium.

import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { launch, DEFAULT_EXECUTABLE } from '../../scripts/drivers/chromium.mjs';
import { testModels, PROMPT_TOKENS } from '../browser/test-models.mjs';
import { serveDir, ISOLATION_HEADERS, CDN_HEADERS } from './static-server.mjs';
import { parseOptions } from '../common/options.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SKIP = 77;
const SETTINGS = { seed: 42, maxTokens: 24 };
const THREADS = 2;

const args = parseOptions(process.argv.slice(2), {
  consumer: null, tarball: null, chromium: DEFAULT_EXECUTABLE,
  cli: path.join(ROOT, 'build', 'release', 'cli', 'bitmamba'),
  out: path.join(ROOT, 'build', 'package-tests'),
}, ['cli', 'out', 'tarball']);
if (!args.tarball || !fs.existsSync(args.tarball)) {
  console.log(`package tests skipped: no tarball at ${args.tarball} (scripts/build-package.sh needs the wasm build)`);
  process.exit(SKIP);
}
if (!fs.existsSync(args.chromium)) {
  console.log(`package tests skipped: no Chromium at ${args.chromium}`);
  process.exit(SKIP);
}

// The page every consumer serves: load the model, generate, report.
function mainJs(loadOptions = {}) {
  return `import { BitMamba } from 'bitmamba-web';

window.result = (async () => {
  const expect = await (await fetch('/test/expect.json')).json();
  const model = await BitMamba.load(expect.model, { cache: false, threads: ${THREADS}, ...${JSON.stringify(loadOptions)} });
  const tokens = [];
  for await (const piece of model.generate({ tokens: expect.prompt }, expect.settings)) {
    if (piece.token !== null) tokens.push(piece.token);
  }
  const { threads, threadsReason, variant } = model.info;
  await model.dispose();
  return { tokens, threads, threadsReason, variant };
})().catch((e) => ({ error: \`\${e.code ?? e.name}: \${e.message}\` }));
`;
}

function indexHtml(head = '', script = './main.js') {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>bitmamba-web consumer</title>${head}</head>
<body><script type="module" src="${script}"></script></body></html>
`;
}

function write(dir, files) {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
}

// A fresh app with the tarball installed, as `npm install ./bitmamba-web-X.Y.Z.tgz` does.
function freshApp(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  write(dir, { 'package.json': JSON.stringify({ name: 'consumer-app', private: true, type: 'module' }, null, 2) });
  const r = spawnSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', args.tarball],
    { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm install of the tarball failed: ${r.stderr}`);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', 'bitmamba-web', 'package.json'), 'utf8'));
  return { pkgDir: path.join(dir, 'node_modules', 'bitmamba-web'), version: pkg.version };
}

// Each consumer builds its app; returns the folder to serve, and for the CDN the package's origin.
const CONSUMERS = {
  async importmap(app) {
    const map = { imports: { 'bitmamba-web': '/node_modules/bitmamba-web/bitmamba.js' } };
    write(app.dir, {
      'index.html': indexHtml(`<script type="importmap">${JSON.stringify(map)}</script>`),
      'main.js': mainJs(),
    });
    return { root: app.dir, apiBundled: false };
  },

  async esbuild(app) {
    const esbuild = await import('esbuild');
    write(app.dir, { 'src/main.js': mainJs(), 'out/index.html': indexHtml() });
    await esbuild.build({
      absWorkingDir: app.dir, entryPoints: ['src/main.js'], bundle: true, format: 'esm',
      outfile: 'out/main.js', logLevel: 'warning',
    });
    return {
      root: path.join(app.dir, 'out'), apiBundled: true,
      // First served as esbuild left it (no worker beside the bundle): a typed
      // error naming the missing worker. Then the package's files are copied
      // beside the bundle, as the package README says.
      async missingWorker(visit) {
        const got = await visit();
        const ok = got.error?.startsWith('unsupported_browser:') && got.error.includes('/worker.js');
        fs.cpSync(app.pkgDir, path.join(app.dir, 'out'), { recursive: true });
        return ok ? null : `without the package's files the page said ${JSON.stringify(got)}, not unsupported_browser naming worker.js`;
      },
    };
  },

  async vite(app) {
    const { build } = await import('vite');
    write(app.dir, { 'index.html': indexHtml(), 'main.js': mainJs({ workerUrl: '/bitmamba-web/worker.js' }) });
    // public/ is copied to the output as it is: the worker and the engine, unbundled.
    fs.cpSync(app.pkgDir, path.join(app.dir, 'public', 'bitmamba-web'), { recursive: true });
    await build({ root: app.dir, configFile: false, logLevel: 'warn', build: { outDir: 'dist', emptyOutDir: true } });
    return { root: path.join(app.dir, 'dist'), apiBundled: true };
  },

  async cdn(app) {
    const cdn = await serveDir({ root: app.pkgDir, prefix: `/npm/bitmamba-web@${app.version}/`, headers: CDN_HEADERS });
    const base = `${cdn.url}npm/bitmamba-web@${app.version}/`;
    write(app.dir, {
      'index.html': indexHtml(`<script type="importmap">${JSON.stringify({ imports: { 'bitmamba-web': `${base}bitmamba.js` } })}</script>`),
      'main.js': mainJs(),
    });
    return { root: app.dir, apiBundled: false, cdn };
  },
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function run() {
  const build = CONSUMERS[args.consumer];
  if (!build) throw new Error(`--consumer must be one of ${Object.keys(CONSUMERS).join(', ')}`);
  const { demoModel, nativeTokens } = testModels(args.cli, path.join(args.out, `models-${args.consumer}`));
  const want = nativeTokens(PROMPT_TOKENS, SETTINGS);

  let t = Date.now();
  const dir = path.join(args.out, args.consumer);
  const app = { dir, ...freshApp(dir) };
  const built = await build(app);
  const buildSeconds = (Date.now() - t) / 1000;

  const expect = JSON.stringify({ model: '/models/demo.bin', prompt: PROMPT_TOKENS, settings: SETTINGS });
  const site = await serveDir({
    root: built.root, headers: ISOLATION_HEADERS,
    routes: { '/test/expect.json': expect, '/models/demo.bin': fs.readFileSync(demoModel) },
  });
  let browser;
  try {
    t = Date.now();
    browser = await launch({ executable: args.chromium });
    const visit = async () => {
      await browser.goto(site.url);
      return browser.evaluate('window.result');
    };
    const problems = [];
    const missing = await built.missingWorker?.(visit);
    if (missing) problems.push(missing);
    site.requests.length = 0;
    const got = await visit();
    if (got.error) problems.push(`the page failed: ${got.error}`);
    else {
      if (JSON.stringify(got.tokens) !== JSON.stringify(want)) problems.push(`tokens ${got.tokens} differ from the CLI's ${want}`);
      if (got.threads !== THREADS) problems.push(`${got.threads} thread(s), not ${THREADS}: ${got.threadsReason}`);
    }
    const asked = built.cdn ? built.cdn.requests : site.requests;
    const from = built.cdn ? 'the CDN origin' : 'the page origin';
    for (const file of ['worker.js', `dist/bitmamba-${got.variant}.wasm`, `dist/bitmamba-${got.variant}.worker.js`]) {
      if (!got.error && !asked.some((p) => p.endsWith(`/${file}`))) problems.push(`${file} was not requested from ${from}`);
    }
    if (built.apiBundled && site.requests.some((p) => p.endsWith('/bitmamba.js'))) {
      problems.push('the page requested bitmamba.js: the API was not bundled');
    }
    if (built.cdn && site.requests.some((p) => p.includes('worker') || p.includes('/dist/'))) {
      problems.push(`the page origin served engine files: ${site.requests.join(' ')}`);
    }
    const pageSeconds = (Date.now() - t) / 1000;
    if (problems.length) {
      console.log(`FAIL package_${args.consumer}: ${problems.join('; ')}`);
      return 1;
    }
    console.log(`ok   package_${args.consumer}: ${got.tokens.length} tokens equal the CLI's, ${got.threads} threads, ` +
      `${got.variant}; app built in ${buildSeconds.toFixed(1)} s, page ${pageSeconds.toFixed(1)} s`);
    return 0;
  } finally {
    await browser?.close();
    await site.close();
    await built.cdn?.close();
  }
}

process.exit(await run());
