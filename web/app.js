// The demo page: pick a model, watch it download, generate text.
// All text from the model is inserted as text nodes, never as HTML.

import { BitMamba } from './bitmamba.js';

const MODELS = {
  'hf-255m': { label: 'BitMamba-2 255M', url: 'https://huggingface.co/Zhayr1/BitMamba-2-0.25B/resolve/main/bitmamba_cpp/bitmamba_255m.bin' },
  'hf-1b': { label: 'BitMamba-2 1B', url: 'https://huggingface.co/Zhayr1/BitMamba-2-1B/resolve/main/bitmamba_cpp/bitmamba_1b.bin' },
  demo: { label: 'Offline demo model', url: 'models/bitmamba-demo.bin' },
};

const $ = (id) => document.getElementById(id);
const MiB = 1 << 20;

// Read by the browser tests; nothing in the page depends on it.
const demo = (window.bitmambaDemo = {
  state: 'idle',      // idle | loading | ready | generating | error
  model: null,
  lastRun: null,      // {tokens: number[], stats, stopRequestedAt, tokenTimes: number[]}
  lastError: null,
  BitMamba,
});

let model = null;
let loadController = null;
let generation = null;

function setState(state) {
  demo.state = state;
  document.body.dataset.state = state;
  const busy = state === 'loading' || state === 'generating';
  $('load').disabled = busy;
  $('cancel-load').hidden = state !== 'loading';
  $('generate').disabled = !model || busy;
  $('stop').disabled = state !== 'generating';
  $('cursor').hidden = state !== 'generating';
  for (const input of $('model-choices').querySelectorAll('input')) input.disabled = busy;
}

function formatBytes(bytes) {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(2)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${Math.round(bytes / 1024)} KiB`;
}

function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return '';
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${String(Math.round(seconds % 60)).padStart(2, '0')} s`;
}

const ERROR_TEXT = {
  network: ['Download failed', 'Check your connection and try again. A download that broke off is not kept.'],
  http_status: ['The server refused the file', 'Check the address. Nothing was stored.'],
  not_a_model: ['That is not a BitMamba model', 'Pick a BitMamba-2 .bin file (BIT2 format).'],
  corrupt_model: ['The model file is damaged', 'It may be truncated or altered. Download it again or pick another file.'],
  quota: ['Not enough memory', 'Close other tabs or choose a smaller model.'],
  aborted: ['Cancelled', ''],
  unsupported_browser: ['This browser cannot run BitMamba', 'Use a current version of Chrome, Edge, Firefox or Safari.'],
  invalid_argument: ['A setting is out of range', 'Check the sampling settings.'],
  bad_text: ['The prompt could not be read', ''],
};

// The error box sits in the card whose action failed, where the person is looking.
function showError(err, card = 'model-card') {
  demo.lastError = { code: err.code ?? 'internal', message: err.message };
  const box = $('error');
  const anchor = card === 'model-card' ? $('model-status') : $('stats');
  if (box.nextElementSibling !== anchor) anchor.before(box);
  const [title, hint] = ERROR_TEXT[err.code] ?? ['Something went wrong', 'Reloading the page may help.'];
  $('error-title').textContent = title;
  $('error-message').textContent = err.message;
  $('error-hint').textContent = hint;
  $('error-hint').hidden = !hint;
  box.hidden = false;
  box.dataset.code = err.code ?? 'internal';
  box.scrollIntoView({ block: 'nearest' });
}

function hideError() {
  $('error').hidden = true;
  delete $('error').dataset.code;
}

function chosenSource() {
  const choice = document.querySelector('input[name=model]:checked').value;
  if (choice === 'file') {
    const file = $('model-file').files[0];
    if (!file) throw Object.assign(new Error('Choose a .bin file first.'), { code: 'invalid_argument' });
    return { source: file, label: file.name };
  }
  if (choice === 'url') {
    const url = $('model-url').value.trim();
    if (!url) throw Object.assign(new Error('Enter the address of a .bin file.'), { code: 'invalid_argument' });
    return { source: url, label: url.split('/').pop() || url };
  }
  return { source: MODELS[choice].url, label: MODELS[choice].label };
}

// Rate over the last few seconds, for the ETA.
class RateMeter {
  constructor() { this.samples = []; }
  add(loaded) {
    const now = performance.now();
    this.samples.push([now, loaded]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 3000) this.samples.shift();
  }
  rate() {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }
}

const PHASE_TEXT = {
  engine: 'Starting the WebAssembly engine…',
  download: 'Downloading',
  cache: 'Reading from this browser’s storage',
  file: 'Reading the file',
  parse: 'Checking and preparing the weights…',
  ready: 'Ready',
};

function showProgress({ loaded, total, phase }, meter) {
  const box = $('progress');
  box.hidden = false;
  const known = total > 0 && (phase === 'download' || phase === 'cache' || phase === 'file');
  box.classList.toggle('indeterminate', !known && phase !== 'ready');
  $('progress-fill').style.width = known ? `${(100 * loaded) / total}%` : phase === 'ready' ? '100%' : '0';
  let text = PHASE_TEXT[phase] ?? phase;
  if (phase === 'download' || phase === 'cache' || phase === 'file') {
    meter.add(loaded);
    const rate = meter.rate();
    text += ` · ${formatBytes(loaded)}${total ? ` of ${formatBytes(total)}` : ''}`;
    if (rate > 0) text += ` · ${formatBytes(rate)}/s`;
    if (rate > 0 && total) text += ` · about ${formatDuration((total - loaded) / rate)} left`;
  }
  $('progress-text').textContent = text;
}

function describeCache(cache) {
  switch (cache.status) {
    case 'hit': return 'loaded from this browser’s storage';
    case 'stored': return 'stored in this browser for next time';
    case 'skipped': return cache.reason === 'quota'
      ? `not stored: not enough storage space${cache.free != null ? ` (${formatBytes(Math.max(0, cache.free))} free)` : ''}`
      : `not stored (${cache.message ?? cache.reason})`;
    default:
      if (cache.reason === 'disabled') return 'not stored (off)';
      return cache.reason === 'unsupported' ? 'not stored: this browser cannot keep models' : '';
  }
}

// In plain words, what this browser lacks and what it costs; empty when nothing.
function degradedText(info) {
  const lines = [];
  if (info.cache.reason === 'unsupported') lines.push('This browser cannot keep the model; it downloads each visit.');
  if (info.threads === 1 && info.threadsRequested > 1 && self.crossOriginIsolated === true) {
    lines.push(`It runs on one thread: ${info.threadsReason.replace(/, so one thread$/, '')}.`);
  }
  if (info.variant === 'simd128' && info.variantReason !== 'chosen by the variant option') {
    lines.push('This browser has no relaxed SIMD, so a slower engine build runs.');
  }
  return lines.join(' ');
}

function renderDegraded(info) {
  const text = info ? degradedText(info) : '';
  $('degraded-text').textContent = text;
  $('degraded-note').hidden = text === '';
}

function renderModelStatus(info, label, ms) {
  const status = $('model-status');
  status.replaceChildren();
  status.className = 'status ready';
  const name = document.createElement('strong');
  name.textContent = label;
  status.append(name, ` · ${info.nLayers} layers · d_model ${info.dModel} · ${formatBytes(info.fileBytes)} · loaded in ${(ms / 1000).toFixed(1)} s`);
  const cacheText = describeCache(info.cache);
  if (cacheText) status.append(` · ${cacheText}`);
  renderDegraded(info);
  for (const tag of [info.variant === 'relaxed' ? 'relaxed SIMD' : 'SIMD128', `${info.threads} thread${info.threads === 1 ? '' : 's'}`]) {
    const span = document.createElement('span');
    span.className = 'tag';
    span.textContent = tag;
    status.append(' ', span);
  }
}

function renderEnv(info) {
  const chips = [];
  const isolated = self.crossOriginIsolated === true;
  chips.push([isolated ? 'cross-origin isolated' : 'not isolated', isolated ? 'good' : 'meh']);
  if (info) {
    chips.push([info.variant === 'relaxed' ? 'relaxed SIMD' : 'SIMD128', 'good']);
    chips.push([`${info.threads} thread${info.threads === 1 ? '' : 's'}`, info.threads > 1 ? 'good' : 'meh']);
  } else {
    chips.push([`${navigator.hardwareConcurrency || '?'} cores`, '']);
  }
  $('env').replaceChildren(...chips.map(([text, cls]) => {
    const li = document.createElement('li');
    li.textContent = text;
    if (cls) li.className = cls;
    return li;
  }));
  const coi = window.bitmambaCoi;  // from coi-sw.js
  $('coi-note').hidden = isolated || !coi || !coi.available();
}

async function renderCache() {
  let entries = [];
  try {
    entries = await BitMamba.cachedModels();
  } catch { /* storage unavailable */ }
  const total = entries.reduce((a, e) => a + e.size, 0);
  $('cache-summary').textContent = entries.length ? `(${entries.length}, ${formatBytes(total)})` : '(none)';
  $('cache-list').replaceChildren(...entries.map((e) => {
    const li = document.createElement('li');
    li.textContent = `${e.url} — ${formatBytes(e.size)}, sha256 ${e.sha256.slice(0, 12)}…`;
    return li;
  }));
  $('clear-cache').disabled = entries.length === 0;
}

async function loadModel() {
  hideError();
  let chosen;
  try {
    chosen = chosenSource();
  } catch (e) {
    showError(e);
    return;
  }
  if (model) {
    const old = model;
    model = null;
    demo.model = null;
    await old.dispose();
  }
  setState('loading');
  $('model-status').className = 'status';
  $('model-status').textContent = `Loading ${chosen.label}…`;
  const meter = new RateMeter();
  loadController = new AbortController();
  const started = performance.now();
  try {
    model = await BitMamba.load(chosen.source, {
      cache: $('use-cache').checked,
      signal: loadController.signal,
      onProgress: (p) => showProgress(p, meter),
    });
    demo.model = model;
    renderModelStatus(model.info, chosen.label, performance.now() - started);
    renderEnv(model.info);
    $('progress').hidden = true;
    setState('ready');
    if (model.info.cache.status === 'stored') navigator.storage?.persist?.().catch(() => {});
    $('prompt').focus();
    updateMemory();
  } catch (e) {
    model = null;
    $('progress').hidden = true;
    $('model-status').className = 'status';
    $('model-status').textContent = e.code === 'aborted' ? 'Loading cancelled. No model loaded.' : 'No model loaded.';
    if (e.code !== 'aborted') showError(e);
    else demo.lastError = { code: e.code, message: e.message };
    setState('idle');
  } finally {
    loadController = null;
    demo.loadsFinished = (demo.loadsFinished ?? 0) + 1;
    renderCache();
  }
}

function readSettings() {
  const number = (id) => {
    const v = Number($(id).value);
    if ($(id).value.trim() === '' || !Number.isFinite(v)) {
      throw Object.assign(new Error(`${$(id).parentElement.firstChild.textContent.trim()} must be a number.`), { code: 'invalid_argument' });
    }
    return v;
  };
  const seedText = $('seed').value.trim();
  if (seedText !== '' && !/^\d+$/.test(seedText)) {
    throw Object.assign(new Error('The seed must be a whole number (or empty for a random one).'), { code: 'invalid_argument' });
  }
  return {
    temperature: number('temperature'),
    repetitionPenalty: number('repetition-penalty'),
    minP: number('min-p'),
    topP: number('top-p'),
    topK: Math.trunc(number('top-k')),
    maxTokens: Math.trunc(number('max-tokens')),
    seed: seedText === '' ? String(crypto.getRandomValues(new Uint32Array(1))[0]) : seedText,
  };
}

let memoryTimer = null;
async function updateMemory() {
  if (!model) return;
  try {
    const { heapBytes } = await model.memory();
    demo.heapBytes = heapBytes;
    $('live').dataset.memory = heapBytes ? `wasm memory ${formatBytes(heapBytes)}` : '';
    renderLive();
  } catch { /* disposed */ }
}

let liveRate = '';
function renderLive() {
  $('live').textContent = [liveRate, $('live').dataset.memory].filter(Boolean).join(' · ');
}

async function generate() {
  if (!model) return;
  hideError();
  let settings;
  try {
    settings = readSettings();
  } catch (e) {
    showError(e, 'generate-card');
    return;
  }
  const prompt = $('prompt').value;
  $('output-prompt').textContent = prompt;
  const out = $('output-text');
  out.textContent = '';
  $('stats').textContent = '';
  liveRate = '';
  setState('generating');
  const run = { tokens: [], tokenTimes: [], stats: null, stopRequestedAt: null, settings, prompt };
  demo.lastRun = run;
  generation = model.generate(prompt, settings);
  memoryTimer = setInterval(updateMemory, 1000);
  const start = performance.now();
  let firstAt = null;
  let pending = '';
  let frame = 0;
  const flush = () => {
    frame = 0;
    if (pending) {
      out.append(pending);  // a Text node: never parsed as HTML
      pending = '';
      const box = $('output');
      if (box.scrollHeight - box.scrollTop - box.clientHeight < 80) box.scrollTop = box.scrollHeight;
    }
  };
  try {
    for await (const piece of generation) {
      if (piece.token !== null) {
        run.tokens.push(piece.token);
        run.tokenTimes.push(piece.t);
      }
      if (firstAt === null) firstAt = performance.now();
      pending += piece.text;
      if (!frame) frame = requestAnimationFrame(flush);
      const n = run.tokens.length;
      if (n > 1) {
        liveRate = `${n} tokens · ${(((n - 1) * 1000) / (performance.now() - firstAt)).toFixed(1)} tok/s`;
        renderLive();
      }
    }
    run.stats = await generation.stats;
    if (frame) cancelAnimationFrame(frame);
    flush();
    const s = run.stats;
    const why = { eos: 'end of text', max_tokens: 'token limit', stopped: 'stopped' }[s.stopReason] ?? s.stopReason;
    $('stats').textContent = [
      `${s.generatedTokens} tokens (${why})`,
      `prompt ${s.promptTokens} tokens at ${s.prefillTokensPerSecond ? s.prefillTokensPerSecond.toFixed(0) : '–'} tok/s`,
      `generation ${s.decodeTokensPerSecond ? s.decodeTokensPerSecond.toFixed(1) : '–'} tok/s`,
      `first token after ${s.timeToFirstTokenMs != null ? s.timeToFirstTokenMs.toFixed(0) : '–'} ms`,
      `seed ${s.seed}`,
    ].join(' · ');
    liveRate = '';
  } catch (e) {
    if (frame) cancelAnimationFrame(frame);
    flush();
    showError(e, 'generate-card');
  } finally {
    run.stopRequestedAt = generation.stopRequestedAt;
    generation = null;
    clearInterval(memoryTimer);
    await updateMemory();
    setState(model ? 'ready' : 'idle');
    demo.runsCompleted = (demo.runsCompleted ?? 0) + 1;
  }
}

function init() {
  $('load').addEventListener('click', loadModel);
  $('cancel-load').addEventListener('click', () => loadController?.abort());
  $('generate').addEventListener('click', generate);
  $('stop').addEventListener('click', () => generation?.stop());
  $('error-close').addEventListener('click', hideError);
  $('seed-random').addEventListener('click', () => { $('seed').value = String(crypto.getRandomValues(new Uint32Array(1))[0]); });
  $('clear-cache').addEventListener('click', async () => {
    await BitMamba.clearCache();
    renderCache();
  });
  $('model-file').addEventListener('change', () => { document.querySelector('input[name=model][value=file]').checked = true; });
  $('model-url').addEventListener('input', () => { document.querySelector('input[name=model][value=url]').checked = true; });
  $('prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !$('generate').disabled) generate();
  });
  $('coi-enable').addEventListener('click', () => window.bitmambaCoi?.enable());
  renderEnv(null);
  renderCache();
  setState('idle');
}

init();
