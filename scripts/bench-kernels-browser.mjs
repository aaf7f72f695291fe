#!/usr/bin/env node
// Runs the wasm kernel bench (tests/wasm/kernel_bench.cpp, built by
// scripts/build-wasm.sh) in a browser instead of Node, and prints its table:
//
//   node scripts/bench-kernels-browser.mjs [--variant relaxed|simd128] [--browser chromium|firefox|webkit]
//                                          [--executable PATH]
//
// The bench's main() runs on the page's thread, from a page written to a
// temporary folder and served cross-origin isolated (its memory is shared),
// as the demo is. Exits with the bench's status.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './serve.mjs';
import { driverFor } from './drivers/index.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const o = { variant: 'relaxed', browser: 'chromium', executable: null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const v = () => argv[++i];
  if (argv[i] === '--variant') o.variant = v();
  else if (argv[i] === '--browser') o.browser = v();
  else if (argv[i] === '--executable') o.executable = v();
  else {
    console.error(`bench-kernels-browser: unknown argument ${argv[i]}`);
    process.exit(2);
  }
}
const dist = path.join(ROOT, 'build', 'wasm', 'test');
const script = `kernel-bench-${o.variant}.js`;
if (!fs.existsSync(path.join(dist, script))) {
  console.error(`bench-kernels-browser: no ${script} in ${dist} (scripts/build-wasm.sh)`);
  process.exit(1);
}

// The page: Module's output goes to window.benchLines, its exit status to window.benchStatus.
const web = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmamba-kernel-bench-'));
fs.writeFileSync(path.join(web, 'index.html'),
  `<!doctype html><meta charset="utf-8"><script src="page.js"></script><script src="/dist/${script}"></script>\n`);
fs.writeFileSync(path.join(web, 'page.js'), `window.benchLines = [];
var Module = {
  print: (t) => window.benchLines.push(t),
  printErr: (t) => window.benchLines.push(t),
  onExit: (status) => { window.benchStatus = status; },
  onAbort: (what) => { window.benchLines.push('abort: ' + what); window.benchStatus = 1; },
};
`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const { server, url } = await startServer({ port: 0, web, dist });
const driver = await driverFor(o.browser);
const browser = await driver.launch({ executable: o.executable ?? driver.DEFAULT_EXECUTABLE });
let status = 1;
try {
  await browser.goto(url);
  const end = Date.now() + 20 * 60 * 1000;
  let printed = 0;
  for (;;) {
    const { lines, done } = await browser.evaluate('({ lines: window.benchLines, done: window.benchStatus })');
    for (; printed < lines.length; printed++) console.log(lines[printed]);
    if (done !== null && done !== undefined) { status = done; break; }
    if (Date.now() > end) throw new Error('no result in 20 minutes');
    await sleep(500);
  }
  console.log(`(${browser.name}, ${o.variant} build)`);
} finally {
  await browser.close();
  server.close();
  fs.rmSync(web, { recursive: true, force: true });
}
process.exit(status);
