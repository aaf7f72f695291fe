// A page reload in the middle of a download. The first visit begins loading
// `model` and shows the bytes that arrived in window.loadedBytes (the test
// server stalls the answer halfway, then reloads the page); after the
// reload the page loads the same URL again and posts what came from the
// partial cache file and what from the network, with the SHA-256 and the
// tokens.

import { BitMamba } from '/bitmamba.js';

const q = new URLSearchParams(location.search);
const url = q.get('model');
const post = (body) => fetch('/test/result', { method: 'POST', body: JSON.stringify(body) });

window.loadedBytes = 0;
const reloaded = performance.getEntriesByType('navigation')[0]?.type === 'reload';
if (!reloaded) {
  BitMamba.load(url, { cache: true, onProgress: (p) => { if (p.phase === 'download') window.loadedBytes = p.loaded; } })
    .catch((e) => { window.loadError = `${e.code}: ${e.message}`; });
} else {
  const expect = await (await fetch('/test/expect.json')).json();
  const started = performance.now();
  try {
    const model = await BitMamba.load(url, { cache: true });
    const seconds = (performance.now() - started) / 1000;
    const tokens = [];
    for await (const piece of model.generate({ tokens: expect.prompt }, expect.resume.settings)) if (piece.token !== null) tokens.push(piece.token);
    const { sha256, cache, download } = model.info;
    await model.dispose();
    await post({ name: 'resume_after_reload', ok: true, seconds, sha256, cache, download, tokens });
  } catch (e) {
    await post({ name: 'resume_after_reload', ok: false, seconds: (performance.now() - started) / 1000, error: `${e.code}: ${e.message}` });
  }
}
