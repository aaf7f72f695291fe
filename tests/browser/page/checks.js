// The browser checks, written once for every engine. The test server
// (tests/browser/engines.mjs) serves this page beside the web/ files and
// answers /test/expect.json with the native CLI's tokens and logits; each
// result is posted to /test/result as it is known, and {done} at the end.
// The server, not this page, compares the engine's modes with docs/browser.md.

import { BitMamba, BitMambaError } from '/bitmamba.js';

const violations = [];
document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.violatedDirective} ${e.blockedURI}`));

const post = (body) => fetch('/test/result', { method: 'POST', body: JSON.stringify(body) });

function show(text) {
  document.getElementById('results').append(Object.assign(document.createElement('li'), { textContent: text }));
}

async function check(name, fn) {
  const started = performance.now();
  let result;
  try {
    result = { name, ok: true, ...(await fn()) };
  } catch (e) {
    result = { name, ok: false, error: `${e && e.code ? e.code + ': ' : ''}${e && e.message ? e.message : e}` };
  }
  result.seconds = (performance.now() - started) / 1000;
  show(`${result.ok ? 'ok' : 'FAIL'} ${name} ${result.note ?? result.error ?? ''}`);
  await post(result);
  return result;
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

async function collect(generation) {
  const out = [];
  for await (const piece of generation) if (piece.token !== null) out.push(piece.token);
  return out;
}

function firstDifference(got, want) {
  for (let i = 0; i < Math.max(got.length, want.length); i++) if (got[i] !== want[i]) return i;
  return -1;
}

// How often the server has sent the model at this path.
const requestCount = async (url) => (await (await fetch('/test/requests')).json())[url];
const expect = await (await fetch('/test/expect.json')).json();
let model = null;

await check('load', async () => {
  await BitMamba.clearCache();
  model = await BitMamba.load(expect.model, { cache: true });
  const { variant, variantReason, threads, threadsRequested, threadsReason, crossOriginIsolated, cache, source, download } = model.info;
  const reader = download && download.timings.reader;
  return {
    info: { variant, variantReason, threads, threadsRequested, threadsReason, crossOriginIsolated, cache, source, reader },
    note: `${variant} (${variantReason}); ${threads} thread(s) (${threadsReason}); cache ${cache.status}${cache.message ? ': ' + cache.message : ''}; ${reader} reader`,
  };
});

await check('tokens_equal_cli', async () => {
  for (const c of expect.cases) {
    const got = await collect(model.generate({ tokens: expect.prompt }, c.settings));
    const at = firstDifference(got, c.tokens);
    assert(at < 0, `settings ${JSON.stringify(c.settings)}: token ${at} is ${got[at]}, the CLI's ${c.tokens[at]}`);
  }
  return { note: `${expect.cases.length} sampling settings give the CLI's tokens` };
});

await check('logits_bit_identical', async () => {
  const got = new Uint32Array((await model.logits(expect.logits.tokens)).buffer);
  const want = new Uint32Array(Uint8Array.from(atob(expect.logits.f32), (c) => c.charCodeAt(0)).buffer);
  assert(got.length === want.length, `${got.length} logits, the CLI's ${want.length}`);
  const at = firstDifference(got, want);
  assert(at < 0, `logit ${at} has bits ${got[at]?.toString(16)}, the CLI's ${want[at]?.toString(16)}`);
  return { note: `${got.length} logits, every bit as the CLI's` };
});

await check('cache', async () => {
  if (model.info.cache.status !== 'stored') {
    // Where storage is unusable the listing and clearing calls still work.
    const listed = await BitMamba.cachedModels();
    await BitMamba.clearCache();
    assert(listed.length === 0, `cachedModels() lists ${listed.length} entries without a cache`);
    return { mode: 'uncached', note: `no cache (${model.info.cache.message}); cachedModels() is [] and clearCache() resolves` };
  }
  await model.dispose();
  const before = await requestCount(expect.model);
  model = await BitMamba.load(expect.model, { cache: true });
  const after = await requestCount(expect.model);
  assert(model.info.source === 'cache' && model.info.cache.status === 'hit', `second load came from ${model.info.source}`);
  assert(after === before, `${after - before} model requests on the cached load`);
  const got = await collect(model.generate({ tokens: expect.prompt }, expect.cases[0].settings));
  assert(firstDifference(got, expect.cases[0].tokens) < 0, 'tokens after a cached load differ from the CLI\'s');
  return { mode: 'hit', note: 'second load from the cache, no model request' };
});

// A compact file (`bitmamba convert --embed q8`) by URL, then from the cache
// where there is one; its tokens are those the CLI gives for that file.
await check('compact_q8_file', async () => {
  const { model: url, settings, tokens } = expect.compact;
  const generateAndCompare = async (loaded, when) => {
    const got = await collect(loaded.generate({ tokens: expect.prompt }, settings));
    const at = firstDifference(got, tokens);
    assert(at < 0, `${when}: token ${at} is ${got[at]}, the CLI's ${tokens[at]}`);
  };
  let compact = await BitMamba.load(url, { cache: true });
  try {
    await generateAndCompare(compact, 'by URL');
    if (compact.info.cache.status !== 'stored') return { mode: 'uncached', note: `loads by URL; ${tokens.length} tokens equal the CLI's; no cache` };
    await compact.dispose();
    compact = null;
    const before = await requestCount(url);
    compact = await BitMamba.load(url, { cache: true });
    const after = await requestCount(url);
    assert(compact.info.source === 'cache' && compact.info.cache.status === 'hit', `second load came from ${compact.info.source}`);
    assert(after === before, `${after - before} model requests on the cached load`);
    await generateAndCompare(compact, 'from the cache');
    return { mode: 'hit', note: `by URL and again from the cache with no request; ${tokens.length} tokens equal the CLI's both times` };
  } finally {
    await compact?.dispose();
  }
});

await check('typed_errors_nothing_stored', async () => {
  const seen = [];
  for (const [url, code] of expect.failures) {
    let error = null;
    try {
      await BitMamba.load(url, { cache: true });
    } catch (e) {
      error = e;
    }
    assert(error instanceof BitMambaError, `${url}: ${error ? error.constructor.name + ' ' + error.message : 'loaded'}`);
    assert(error.code === code, `${url}: ${error.code} (${error.message}), expected ${code}`);
    seen.push(`${url.split('/').pop()}→${code}`);
  }
  const stored = (await BitMamba.cachedModels()).map((e) => e.url).filter((u) => u.includes('/test/'));
  assert(stored.length === 0, `stored after the errors: ${stored.join(', ')}`);
  return { note: seen.join(', ') };
});

// The smallest step performance.now() takes here. Firefox coarsens its
// clocks and adds jitter, so two contexts' clocks can only be compared to
// within about one step each.
function clockStep() {
  let step = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    let t1 = t0;
    while (t1 === t0) t1 = performance.now();
    step = Math.max(step, t1 - t0);
  }
  return step;
}

await check('continue_equals_one_run', async () => {
  // 400 tokens as three runs: 15, then one stopped once the page has seen
  // 20 (tokens arrive in batches, so the worker may be a little further),
  // then the rest, each continuing from the state and seed the last left.
  const { settings, tokens: want } = expect.long;
  const got = [];
  let run = model.generate({ tokens: expect.prompt }, { ...settings, maxTokens: 15 });
  got.push(...await collect(run));
  let stats = await run.stats;
  run = model.generate('', { ...settings, maxTokens: want.length - 100, continue: true, seed: stats.nextSeed });
  for await (const piece of run) {
    if (piece.token === null) continue;
    got.push(piece.token);
    if (got.length === 20) run.stop();
  }
  stats = await run.stats;
  assert(stats.stopReason === 'stopped', `the middle run ended by ${stats.stopReason}`);
  const afterStop = got.length;
  run = model.generate('', { ...settings, maxTokens: want.length - got.length, continue: true, seed: stats.nextSeed });
  got.push(...await collect(run));
  const at = firstDifference(got, want);
  assert(at < 0, `token ${at} differs: ${got[at]} against the CLI's ${want[at]}`);
  return { note: `15 + ${afterStop - 15} (stopped) + ${want.length - afterStop} tokens equal the CLI's ${want.length} in one run` };
});

await check('stop_string', async () => {
  const { settings, tokens, splitAfter } = expect.stop;
  const run = model.generate({ tokens: expect.prompt }, settings);
  const got = await collect(run);
  const stats = await run.stats;
  assert(firstDifference(got, tokens) < 0, `tokens ${got.join(' ')} differ from the CLI's ${tokens.join(' ')}`);
  assert(got.length === splitAfter + 1, `${got.length} tokens; the stop string ends in token ${splitAfter + 1}`);
  assert(stats.stopReason === 'stop' && stats.stopString === settings.stop[0],
    `stopReason ${stats.stopReason}, stopString ${JSON.stringify(stats.stopString)}`);
  let error = null;
  try {
    await collect(model.generate('abc', { stop: [''] }));
  } catch (e) {
    error = e;
  }
  assert(error instanceof BitMambaError && error.code === 'invalid_argument', `an empty stop string gave ${error && (error.code || error.message)}`);
  return { note: `${JSON.stringify(settings.stop[0])}, split by tokens ${splitAfter} and ${splitAfter + 1}, ends the run there as in the CLI` };
});

await check('stop_and_abort', async () => {
  const run = model.generate({ tokens: expect.prompt }, { seed: 11, maxTokens: 4000 });
  // Tokens the worker made after stop() was called, by the worker's clock
  // (tokens already on their way to the page do not count). The worker's
  // clock is at least `lead` ahead of the page's, since no token arrives
  // before it was made, and a token stamped within two clock steps of stop()
  // cannot be placed before or after it.
  const slack = 2 * clockStep();
  let lead = 0;
  let n = 0;
  let after = 0;
  for await (const piece of run) {
    if (piece.token === null) continue;
    lead = Math.max(lead, piece.t - (performance.timeOrigin + performance.now()));
    if (run.stopRequestedAt !== null && piece.t - lead > run.stopRequestedAt + slack) after++;
    if (++n === 20) run.stop();
  }
  const stats = await run.stats;
  assert(stats.stopReason === 'stopped', `stop reason ${stats.stopReason}`);
  assert(after <= 1, `${after} tokens after stop() (clock step ${(slack / 2).toFixed(3)} ms)`);
  const controller = new AbortController();
  let error = null;
  try {
    let k = 0;
    for await (const piece of model.generate('abc', { maxTokens: 3000, signal: controller.signal })) {
      if (piece.token !== null && ++k === 5) controller.abort();
    }
  } catch (e) {
    error = e;
  }
  assert(error instanceof BitMambaError && error.code === 'aborted', `an aborted signal gave ${error && (error.code || error.message)}`);
  const again = await collect(model.generate({ tokens: expect.prompt }, expect.cases[0].settings));
  assert(firstDifference(again, expect.cases[0].tokens) < 0, 'tokens after stop and abort differ from the CLI\'s');
  return { note: `${after} token(s) after stop() (clock step ${(slack / 2).toFixed(3)} ms, worker clock ahead ${lead.toFixed(3)} ms); abort is a typed 'aborted'; the model still gives the CLI's tokens` };
});

// A worker that dies (here terminated under the model, as the browser may
// do) fails the pending and later calls with 'internal'; a new load works.
await check('worker_dies', async () => {
  if (!navigator.locks) return { note: 'N/A: no Web Locks here, so a dead worker goes unnoticed and its calls wait' };
  const doomed = await BitMamba.load(expect.model, { cache: true });
  const run = doomed.generate({ tokens: expect.prompt }, { seed: 1, maxTokens: 4000 });
  let n = 0;
  let pending = null;
  let error = null;
  try {
    for await (const piece of run) {
      if (piece.token === null || ++n < 5 || pending) continue;
      doomed.client.worker.terminate();
      pending = doomed.tokenize('sent to a dead worker').then(() => null, (e) => e);
    }
  } catch (e) {
    error = e;
  }
  assert(error instanceof BitMambaError && error.code === 'internal', `the generation ended with ${error ? error.code + ': ' + error.message : 'no error'}`);
  const later = await pending;
  assert(later instanceof BitMambaError && later.code === 'internal', `a call after the death gave ${later && later.code}`);
  await doomed.dispose();
  const fresh = await BitMamba.load(expect.model, { cache: true });
  try {
    const got = await collect(fresh.generate({ tokens: expect.prompt }, expect.cases[0].settings));
    assert(firstDifference(got, expect.cases[0].tokens) < 0, 'tokens after a new load differ from the CLI\'s');
  } finally {
    await fresh.dispose();
  }
  return { note: `killed after ${n} tokens: the generation and a later call fail with 'internal'; a new load gives the CLI's tokens` };
});

// Downloads that break off (tests/browser/resume-routes.mjs): each must end
// with the file's SHA-256 (where the engine caches, which is when it hashes)
// and the CLI's tokens, and the server's log shows how it got there.
const resumeLog = async (run) => (await fetch(`/test/resume-log?run=${run}`)).json();

async function loadBroken(name, query, options = {}) {
  const run = `${name}-${Date.now().toString(36)}`;
  const started = performance.now();
  const loaded = await BitMamba.load(`/test/resume/model.bin?run=${run}&${query}`, { cache: true, ...options });
  return { loaded, seconds: (performance.now() - started) / 1000, log: await resumeLog(run) };
}

async function sameModel(loaded, want) {
  const { sha256, cache } = loaded.info;
  if (cache.status === 'stored') assert(sha256 === want.sha256, `SHA-256 ${sha256}, the file's ${want.sha256}`);
  else assert(sha256 === null, `SHA-256 ${sha256} without a cache`);
  const got = await collect(loaded.generate({ tokens: expect.prompt }, expect.resume.settings));
  const at = firstDifference(got, want.tokens);
  assert(at < 0, `token ${at} is ${got[at]}, the CLI's ${want.tokens[at]}`);
  return sha256 ? 'same SHA-256 and tokens' : 'same tokens (no cache here, so no SHA-256)';
}

function figures({ seconds, log, loaded }, want) {
  const sent = log.reduce((n, e) => n + e.sent, 0);
  return `${seconds.toFixed(2)} s, answers ${log.map((e) => e.status).join('+')}, ` +
    `${sent - want.size} bytes sent twice, ${loaded.info.download.retries} retry`;
}

for (const fraction of [0.01, 0.5, 0.99]) {
  await check(`resume_drop_${fraction * 100}pct`, async () => {
    const r = await loadBroken(`drop${fraction}`, `drop=${fraction}`);
    try {
      const want = expect.resume.original;
      const [first, second] = r.log;
      assert(r.log.length === 2 && first.status === 200 && second.status === 206, `answers ${JSON.stringify(r.log)}`);
      assert(second.ifRange?.startsWith('"v1-'), `If-Range ${second.ifRange}, not the first answer's ETag`);
      const from = Number(/^bytes=(\d+)-$/.exec(second.range)?.[1]);
      assert(from > 0 && from <= first.sent, `resumed with Range ${second.range} after ${first.sent} bytes were sent`);
      assert(r.loaded.info.download.resumes === 1 && r.loaded.info.download.restarts === 0, JSON.stringify(r.loaded.info.download));
      return { note: `dropped at byte ${first.sent}, resumed from ${from}: ${await sameModel(r.loaded, want)}; ${figures(r, want)}` };
    } finally {
      await r.loaded.dispose();
    }
  });
}

await check('resume_last_modified', async () => {
  const r = await loadBroken('lastmod', 'drop=0.5&validator=last-modified');
  try {
    const want = expect.resume.original;
    assert(r.log.length === 2 && r.log[1].status === 206 && / GMT$/.test(r.log[1].ifRange), `answers ${JSON.stringify(r.log)}`);
    return { note: `If-Range carries Last-Modified when there is no ETag: ${await sameModel(r.loaded, want)}; ${figures(r, want)}` };
  } finally {
    await r.loaded.dispose();
  }
});

await check('resume_server_without_ranges', async () => {
  const r = await loadBroken('noranges', 'drop=0.5&ranges=0');
  try {
    const want = expect.resume.original;
    assert(r.log.length === 2 && r.log[0].status === 200 && r.log[1].status === 200 && r.log[1].range, `answers ${JSON.stringify(r.log)}`);
    assert(r.loaded.info.download.restarts === 1, JSON.stringify(r.loaded.info.download));
    return { note: `the 200 to the range request restarts from byte 0: ${await sameModel(r.loaded, want)}; ${figures(r, want)}` };
  } finally {
    await r.loaded.dispose();
  }
});

await check('resume_changed_file', async () => {
  const r = await loadBroken('changed', 'drop=0.5&change=1');
  try {
    const want = expect.resume.changed;
    assert(r.log.length === 2 && r.log[1].status === 200 && r.log[1].ifRange?.startsWith('"v1-'), `answers ${JSON.stringify(r.log)}`);
    assert(r.loaded.info.download.restarts === 1, JSON.stringify(r.loaded.info.download));
    return { note: `If-Range no longer matches, the new file comes whole: ${await sameModel(r.loaded, want)} as the new file; ${figures(r, want)}` };
  } finally {
    await r.loaded.dispose();
  }
});

await check('resume_without_validator', async () => {
  const r = await loadBroken('novalidator', 'drop=0.5&validator=none');
  try {
    const want = expect.resume.original;
    assert(r.log.length === 2 && r.log[1].status === 200 && r.log[1].range === null, `answers ${JSON.stringify(r.log)}`);
    return { note: `no ETag nor Last-Modified: nothing to validate a range with, so the retry asks for the whole file: ${await sameModel(r.loaded, want)}; ${figures(r, want)}` };
  } finally {
    await r.loaded.dispose();
  }
});

await check('resume_gives_up', async () => {
  const started = performance.now();
  let error = null;
  const run = `givesup-${Date.now().toString(36)}`;
  try {
    await BitMamba.load(`/test/resume/model.bin?run=${run}&drop=0.5&always=1`, { cache: true, retries: 2 });
  } catch (e) {
    error = e;
  }
  const seconds = (performance.now() - started) / 1000;
  const log = await resumeLog(run);
  assert(error instanceof BitMambaError && error.code === 'network', `gave ${error ? error.code + ' ' + error.message : 'a model'}`);
  // Two answers in a row that bring nothing new, then the error (an answer that brings bytes resets the count).
  assert(log.length >= 3 && log.slice(-2).every((e) => e.status === 206 && e.sent === 0), `answers ${JSON.stringify(log)}`);
  assert(seconds >= 0.75, `gave up after ${seconds} s, before the backoff (0.25 s + 0.5 s)`);
  let bad = null;
  try {
    await BitMamba.load(`/test/resume/model.bin?run=${run}-bad`, { retries: -1 });
  } catch (e) {
    bad = e.code;
  }
  assert(bad === 'invalid_argument', `retries -1 gave ${bad}`);
  return { note: `retries: 2 → ${log.length} requests, then 'network' after ${seconds.toFixed(2)} s: "${error.message}"` };
});

// A server that publishes the file's SHA-256 (as Hugging Face does in its
// ETag and X-Linked-Etag) has the download checked against it, cache or not.
await check('published_sha256_checked', async () => {
  const want = expect.resume.original;
  const r = await loadBroken('published', 'validator=sha256&drop=0.5');
  try {
    const { published, sha256 } = r.loaded.info;
    assert(published && published.sha256 === want.sha256 && published.header === 'etag' && published.matched === true,
      `published ${JSON.stringify(published)}`);
    assert(sha256 === want.sha256, `SHA-256 ${sha256}, the file's ${want.sha256}`);
    const got = await collect(r.loaded.generate({ tokens: expect.prompt }, expect.resume.settings));
    assert(firstDifference(got, want.tokens) < 0, 'tokens differ from the CLI\'s');
  } finally {
    await r.loaded.dispose();
  }
  let error = null;
  const run = `wronghash-${Date.now().toString(36)}`;
  try {
    await BitMamba.load(`/test/resume/model.bin?run=${run}&linked=wrong`, { cache: true });
  } catch (e) {
    error = e;
  }
  assert(error instanceof BitMambaError && error.code === 'corrupt_model', `a wrong published hash gave ${error ? error.code : 'a model'}`);
  const stored = (await BitMamba.cachedModels()).map((m) => m.url).filter((u) => u.includes(run));
  assert(stored.length === 0, `stored after the mismatch: ${stored.join(', ')}`);
  return { note: `resumed after a drop and matched the ETag's SHA-256 (${r.loaded.info.cache.status === 'stored' ? 'cached' : 'not cached'}); a wrong X-Linked-Etag is corrupt_model, nothing stored` };
});

await check('no_csp_violation', async () => {
  assert(violations.length === 0, violations.join('; '));
  return { note: 'no violation event in the page (the server checks the reports of the workers)' };
});

await model?.dispose();
await post({ done: true, userAgent: navigator.userAgent });
