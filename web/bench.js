// The browser benchmark (bench.html). Settings come from the form or the
// query string (?model=…&threads=…&prompt=…&gen=…&runs=…&variant=…&kernels=…&autorun=1);
// the result is shown in the table and left in window.benchResult for
// scripts/bench-browser.mjs.

import { BitMamba } from './bitmamba.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
for (const key of ['model', 'threads', 'prompt', 'gen', 'runs', 'variant', 'kernels']) {
  if (params.has(key)) $(key).value = params.get(key);
}

const median = (xs) => {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function status(text) {
  $('status').textContent = text;
}

function show(rows) {
  $('results').tBodies[0].replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.textContent = k;
    const td = document.createElement('td');
    td.textContent = v;
    tr.append(th, td);
    return tr;
  }));
}

function renderEnv(info) {
  const chips = [self.crossOriginIsolated ? 'cross-origin isolated' : 'not isolated', `${navigator.hardwareConcurrency} cores`];
  if (info) chips.push(info.variant, `${info.threads} threads`);
  if (info && info.isa !== info.variant) chips.push(info.isa);
  $('env').replaceChildren(...chips.map((c) => Object.assign(document.createElement('li'), { textContent: c })));
}

// A deterministic prompt of n ordinary token ids.
const promptTokens = (n) => Array.from({ length: n }, (_, i) => 100 + ((i * 7919) % 50000));

async function timedLoad(url, options) {
  const start = performance.now();
  const model = await BitMamba.load(url, options);
  return { model, ms: performance.now() - start };
}

async function run() {
  $('start').disabled = true;
  window.benchResult = null;
  const url = new URL($('model').value, location.href).href;
  const threads = $('threads').value ? Number($('threads').value) : undefined;
  const nPrompt = Number($('prompt').value);
  const nGen = Number($('gen').value);
  const runs = Number($('runs').value);
  const variant = $('variant').value || 'auto';
  const kernels = $('kernels').value || undefined;
  try {
    status('removing any stored copy…');
    await BitMamba.removeCached(url);

    status('loading from the network…');
    const net = await timedLoad(url, { threads, variant, kernels, onProgress: (p) => status(`loading from the network: ${p.phase} ${p.total ? Math.round((100 * p.loaded) / p.total) + '%' : ''}`) });
    const netInfo = net.model.info;
    await net.model.dispose();

    status('loading from storage…');
    const cached = await timedLoad(url, { threads, variant, kernels });
    const model = cached.model;
    const info = model.info;
    renderEnv(info);

    status('warming up…');
    for await (const _ of model.generate({ tokens: promptTokens(8) }, { maxTokens: 8, seed: 1 })) { /* discard */ }

    const samples = [];
    for (let r = 0; r < runs; r++) {
      status(`run ${r + 1} of ${runs}…`);
      const start = performance.now();
      let firstAt = null;
      const g = model.generate({ tokens: promptTokens(nPrompt) }, { maxTokens: nGen, seed: 1000 + r });
      for await (const _ of g) if (firstAt === null) firstAt = performance.now();
      const stats = await g.stats;
      const wallMs = performance.now() - start;
      // As the page sees it: includes the worker round trip of every token.
      const pageDecode = stats.generatedTokens > 1 ? ((stats.generatedTokens - 1) * 1000) / (wallMs - (firstAt - start)) : null;
      samples.push({ ...stats, pageFirstTokenMs: firstAt - start, wallMs, pageDecodeTokensPerSecond: pageDecode });
    }
    const { heapBytes } = await model.memory();
    await model.dispose();

    const result = {
      url,
      crossOriginIsolated: self.crossOriginIsolated === true,
      variant: info.variant,
      isa: info.isa,
      threads: info.threads,
      fileBytes: info.fileBytes,
      cacheStatusFirst: netInfo.cache.status,
      cacheStatusSecond: info.cache.status,
      loadNetworkMs: net.ms,
      loadNetworkTimings: netInfo.timings,
      downloadTimings: netInfo.download?.timings ?? null,
      // null where the browser cannot keep the model: the second load downloaded it again.
      loadCacheMs: info.cache.status === 'hit' ? cached.ms : null,
      loadCacheTimings: info.cache.status === 'hit' ? info.timings : null,
      promptTokens: nPrompt,
      generatedTokens: median(samples.map((s) => s.generatedTokens)),
      prefillTokensPerSecond: median(samples.map((s) => s.prefillTokensPerSecond)),
      decodeTokensPerSecond: median(samples.map((s) => s.decodeTokensPerSecond)),
      pageDecodeTokensPerSecond: median(samples.map((s) => s.pageDecodeTokensPerSecond)),
      timeToFirstTokenMs: median(samples.map((s) => s.pageFirstTokenMs)),
      heapBytes,
      runs: samples,
    };
    window.benchResult = result;
    const MiB = 1 << 20;
    show([
      ['Model', `${url.split('/').pop()} (${(info.fileBytes / MiB).toFixed(1)} MiB, ${info.nLayers} layers, d_model ${info.dModel})`],
      ['Build / kernels / threads', `${info.variant} / ${info.isa} / ${info.threads}`],
      ['Load from the network', `${result.loadNetworkMs.toFixed(0)} ms (engine ${netInfo.timings.engineMs.toFixed(0)}, download ${netInfo.timings.readMs.toFixed(0)}, prepare ${netInfo.timings.parseMs.toFixed(0)}); ${netInfo.cache.status}`],
      ['Load from storage', result.loadCacheMs === null ? `not possible here (${info.cache.message ?? info.cache.status})` : `${result.loadCacheMs.toFixed(0)} ms (engine ${info.timings.engineMs.toFixed(0)}, read ${info.timings.readMs.toFixed(0)}, prepare ${info.timings.parseMs.toFixed(0)}); ${info.cache.status}`],
      ['Prompt (prefill)', `${result.prefillTokensPerSecond.toFixed(1)} tok/s over ${nPrompt} tokens`],
      ['Time to first token', `${result.timeToFirstTokenMs.toFixed(0)} ms`],
      ['Generation (decode)', `${result.decodeTokensPerSecond.toFixed(1)} tok/s over ${result.generatedTokens} tokens (engine time)`],
      ['Generation, as the page receives it', `${result.pageDecodeTokensPerSecond != null ? result.pageDecodeTokensPerSecond.toFixed(1) : '–'} tok/s`],
      ['WebAssembly memory', `${(heapBytes / MiB).toFixed(0)} MiB`],
    ]);
    status('done');
  } catch (e) {
    window.benchResult = { error: { code: e.code ?? 'internal', message: e.message } };
    status(`failed: ${e.message}`);
  } finally {
    $('start').disabled = false;
  }
}

$('start').addEventListener('click', run);
renderEnv(null);
if (params.get('autorun') === '1') run();
