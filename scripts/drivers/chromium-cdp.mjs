// Chromium over the DevTools protocol directly (a pipe, --remote-debugging-pipe),
// for benchmarks: same interface as chromium.mjs, but the page runs as it
// does for a person. Playwright enables the protocol's Network domain on
// every page, and then Chromium keeps a copy of each response body for the
// inspector on the renderer's main thread: a worker's fetch of a 246 MiB
// file ran at 80-118 MB/s that way here, and at 134-150 MB/s without it
// (docs/browser.md).
// This driver sends only Page and Runtime commands.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';

export const DEFAULT_EXECUTABLE = '/usr/bin/chromium';
// The page runs as a foreground tab would, with the switches of Playwright's
// launch that keep a headless renderer from counting as backgrounded (a
// lower CPU priority, throttled timers): the two drivers then differ only in
// the network inspection.
const ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-field-trial-config',
  '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
  '--disable-background-timer-throttling', '--disable-ipc-flooding-protection', '--window-size=1200,1000'];

// Messages on the pipe are JSON, each ended by a NUL byte.
function connect(proc) {
  const toBrowser = proc.stdio[3];
  const fromBrowser = proc.stdio[4];
  const pending = new Map();
  const listeners = new Set();
  let nextId = 0;
  let text = '';
  const failAll = (error) => {
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  };
  fromBrowser.on('data', (data) => {
    text += data.toString('utf8');
    for (let end = text.indexOf('\0'); end >= 0; end = text.indexOf('\0')) {
      const message = JSON.parse(text.slice(0, end));
      text = text.slice(end + 1);
      const waiter = pending.get(message.id);
      if (waiter) {
        pending.delete(message.id);
        if (message.error) waiter.reject(new Error(`${waiter.method}: ${message.error.message}`));
        else waiter.resolve(message.result);
      } else if (message.method) for (const listener of listeners) listener(message);
    }
  });
  proc.on('exit', (code) => failAll(new Error(`chromium exited (${code})`)));
  return {
    send(method, params = {}, sessionId = undefined) {
      return new Promise((resolve, reject) => {
        const id = ++nextId;
        pending.set(id, { resolve, reject, method });
        toBrowser.write(JSON.stringify({ id, method, params, sessionId }) + '\0');
      });
    },
    once(method, sessionId) {
      return new Promise((resolve) => {
        const listener = (message) => {
          if (message.method !== method || message.sessionId !== sessionId) return;
          listeners.delete(listener);
          resolve(message.params);
        };
        listeners.add(listener);
      });
    },
  };
}

export async function launch({ executable = DEFAULT_EXECUTABLE } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmamba-chromium-'));
  const proc = spawn(executable, [...ARGS, '--remote-debugging-pipe', `--user-data-dir=${dir}`, 'about:blank'],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
  const cdp = connect(proc);
  // Browser.close lets Chromium end its child processes, which write to the
  // profile until they go; a kill after 5 s if it does not exit.
  const close = async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      cdp.send('Browser.close').catch(() => {});
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  };
  try {
    const { targetInfos } = await cdp.send('Target.getTargets');
    const page = targetInfos.find((t) => t.type === 'page');
    const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: page.targetId, flatten: true });
    await cdp.send('Page.enable', {}, sessionId);
    return {
      name: 'Chromium',
      async goto(url) {
        const loaded = cdp.once('Page.loadEventFired', sessionId);
        const { errorText } = await cdp.send('Page.navigate', { url }, sessionId);
        if (errorText) throw new Error(`${url}: ${errorText}`);
        await loaded;
      },
      async evaluate(expression) {
        const { result, exceptionDetails } = await cdp.send('Runtime.evaluate', {
          expression: `Promise.resolve(${expression}).then((v) => JSON.stringify(v ?? null))`,
          awaitPromise: true, returnByValue: true,
        }, sessionId);
        if (exceptionDetails) throw new Error(exceptionDetails.exception?.description ?? exceptionDetails.text);
        return JSON.parse(result.value);
      },
      async screenshot(file) {
        const { data } = await cdp.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, sessionId);
        fs.writeFileSync(file, Buffer.from(data, 'base64'));
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
