// Chromium through playwright-core: the driver the Chromium-only browser
// tests use too. Every driver here has the same small interface:
//   const b = await launch({ executable });
//   await b.goto(url); await b.evaluate('expression'); await b.screenshot(file); await b.close();
// evaluate() takes an expression (a promise is awaited) and returns its JSON value.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const DEFAULT_EXECUTABLE = '/usr/bin/chromium';

export async function launch({ executable = DEFAULT_EXECUTABLE } = {}) {
  const { chromium } = await import('playwright-core');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmamba-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: executable, headless: true, viewport: { width: 1200, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    name: 'Chromium',
    async goto(url) { await page.goto(url); },
    async evaluate(expression) { return page.evaluate(`Promise.resolve(${expression}).then((v) => JSON.stringify(v ?? null))`).then(JSON.parse); },
    async screenshot(file) { await page.screenshot({ path: file, fullPage: true }); },
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
