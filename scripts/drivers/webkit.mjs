// WebKitGTK's MiniBrowser through WebKitWebDriver, plain W3C WebDriver over
// HTTP, on a private X display (Xvfb): the engine of Safari, testable on
// Linux. Same interface as chromium.mjs.

import fs from 'node:fs';
import net from 'node:net';
import { spawn } from 'node:child_process';

export const DEFAULT_EXECUTABLE = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

// A display number no other X server holds.
function freeDisplay() {
  for (let n = 90 + Math.floor(Math.random() * 100); n < 400; n++) {
    if (!fs.existsSync(`/tmp/.X11-unix/X${n}`) && !fs.existsSync(`/tmp/.X${n}-lock`)) return n;
  }
  throw new Error('no free X display number');
}

async function until(what, test, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await test().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`${what} did not come up in ${ms / 1000} s`);
    await sleep(100);
  }
}

export async function launch({ executable = DEFAULT_EXECUTABLE } = {}) {
  if (!fs.existsSync(executable)) throw new Error(`no MiniBrowser at ${executable} (scripts/setup.sh installs webkit2gtk-driver)`);
  const display = freeDisplay();
  const children = [];
  const stop = () => { for (const c of children.reverse()) c.kill('SIGKILL'); };
  let base;
  let session;
  try {
    children.push(spawn('Xvfb', [`:${display}`, '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], { stdio: 'ignore' }));
    await until('Xvfb', async () => fs.existsSync(`/tmp/.X11-unix/X${display}`));
    const port = await freePort();
    children.push(spawn('WebKitWebDriver', [`--port=${port}`], { stdio: 'ignore', env: { ...process.env, DISPLAY: `:${display}` } }));
    base = `http://127.0.0.1:${port}`;
    await until('WebKitWebDriver', async () => (await fetch(`${base}/status`)).ok);
    const r = await command(base, 'POST', '/session', {
      capabilities: { alwaysMatch: { browserName: 'MiniBrowser', 'webkitgtk:browserOptions': { binary: executable, args: ['--automation'] } } },
    });
    session = `${base}/session/${r.sessionId}`;
    await command(session, 'POST', '/window/rect', { width: 1200, height: 1000 }).catch(() => {});
  } catch (e) {
    stop();
    throw e;
  }
  return {
    name: 'WebKit',
    async goto(url) { await command(session, 'POST', '/url', { url }); },
    async evaluate(expression) {
      const json = await command(session, 'POST', '/execute/async', {
        script: `const done = arguments[0]; Promise.resolve(${expression}).then((v) => done(JSON.stringify(v ?? null)), (e) => done(JSON.stringify({ evaluateError: String(e) })));`,
        args: [],
      });
      return JSON.parse(json);
    },
    async screenshot(file) { fs.writeFileSync(file, Buffer.from(await command(session, 'GET', '/screenshot'), 'base64')); },
    async close() {
      await command(session, 'DELETE', '').catch(() => {});
      stop();
    },
  };
}

// One WebDriver command; returns `value`, throws the driver's error message.
async function command(base, method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok || (json.value && json.value.error)) throw new Error(`WebDriver ${method} ${path}: ${json.value?.error}: ${json.value?.message}`);
  return json.value ?? json;
}
