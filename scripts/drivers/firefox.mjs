// Firefox (ESR) headless over WebDriver BiDi, with a client of a few lines on
// the `ws` package. puppeteer-core speaks BiDi too; under it Firefox ESR now
// and then never started a page's module worker, and a client this small
// keeps the one protocol exchange it needs in view. Same interface as
// chromium.mjs.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import WebSocket from 'ws';

export const DEFAULT_EXECUTABLE = '/usr/bin/firefox-esr';

// Quiet a fresh profile: no first-run pages, no background updates or telemetry.
const PREFS = {
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage_override.mstone': '"ignore"',
  'browser.aboutwelcome.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.reportingpolicy.firstRun': false,
  'app.update.disabledForTesting': true,
  'remote.prefs.recommended': true,
};

function waitForEndpoint(child) {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`Firefox did not open WebDriver BiDi in 60 s: ${text.slice(-500)}`)), 60000);
    child.stderr.on('data', (d) => {
      text += d;
      const m = text.match(/WebDriver BiDi listening on (ws:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => reject(new Error(`Firefox exited (${code}): ${text.slice(-500)}`)));
  });
}

// One WebSocket, commands matched to replies by id.
async function connect(url) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let nextId = 1;
  const pending = new Map();
  ws.on('message', (data) => {
    const msg = JSON.parse(data);
    const entry = pending.get(msg.id);
    if (!entry) return;  // an event
    pending.delete(msg.id);
    if (msg.type === 'error') entry.reject(new Error(`${msg.error}: ${msg.message}`));
    else entry.resolve(msg.result);
  });
  return {
    send(method, params = {}) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        ws.send(JSON.stringify({ id, method, params }));
      });
    },
    close() { ws.terminate(); },
  };
}

export async function launch({ executable = DEFAULT_EXECUTABLE } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmamba-firefox-'));
  fs.writeFileSync(path.join(profile, 'user.js'),
    Object.entries(PREFS).map(([k, v]) => `user_pref("${k}", ${v});\n`).join(''));
  const child = spawn(executable, ['--headless', '--no-remote', '--profile', profile, '--remote-debugging-port', '0'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const cleanup = () => {
    child.kill('SIGKILL');
    fs.rmSync(profile, { recursive: true, force: true });
  };
  let bidi;
  let context;
  try {
    bidi = await connect(`${await waitForEndpoint(child)}/session`);
    await bidi.send('session.new', { capabilities: {} });
    context = (await bidi.send('browsingContext.getTree', {})).contexts[0].context;
    await bidi.send('browsingContext.setViewport', { context, viewport: { width: 1200, height: 1000 } });
  } catch (e) {
    bidi?.close();
    cleanup();
    throw e;
  }
  return {
    name: 'Firefox',
    async goto(url) { await bidi.send('browsingContext.navigate', { context, url, wait: 'complete' }); },
    async evaluate(expression) {
      const r = await bidi.send('script.evaluate', {
        expression: `Promise.resolve(${expression}).then((v) => JSON.stringify(v ?? null))`,
        target: { context }, awaitPromise: true, resultOwnership: 'none',
      });
      if (r.type === 'exception') throw new Error(`evaluate: ${r.exceptionDetails.text}`);
      return JSON.parse(r.result.value);
    },
    async screenshot(file) {
      const { data } = await bidi.send('browsingContext.captureScreenshot', { context, origin: 'document' });
      fs.writeFileSync(file, Buffer.from(data, 'base64'));
    },
    async close() {
      await bidi.send('browser.close', {}).catch(() => {});
      bidi.close();
      cleanup();
    },
  };
}
