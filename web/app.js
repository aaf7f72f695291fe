// The demo page: pick a model, watch it download, generate text.
// All text from the model is inserted as text nodes, never as HTML.

import { BitMamba } from './bitmamba.js';
import { TEMPLATES, checkTemplate, turnText } from './conversation.js';
import { initSessionPanel } from './session-panel.js';
import { toFragment, fromFragment } from './share-link.js';

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
let loadedFrom = null;  // the loaded model's URL or file name, for saved sessions
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
  $('continue').disabled = !model || busy || !context.continuation;
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
  bad_session: ['That session cannot be used', 'Nothing was changed. Pick a file this page exported.'],
  bad_state: ['That session does not fit this model', 'Nothing was changed.'],
  other_model: ['That session belongs to another model', 'Nothing was changed. Load the model it names first.'],
  storage: ['Sessions cannot be stored here', 'This browser offers no storage for this page; export the session as a file instead.'],
};

// The error box sits in the card whose action failed, where the person is looking.
function showError(err, card = 'model-card') {
  demo.lastError = { code: err.code ?? 'internal', message: err.message };
  const box = $('error');
  const anchor = { 'model-card': $('model-status'), 'sessions-card': $('sessions-status') }[card] ?? $('stats');
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
    loadedFrom = typeof chosen.source === 'string' ? chosen.source : chosen.source.name ?? chosen.label;
    clearContext();
    context.stateBytes = null;
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
    stop: $('stop-text').value === '' ? [] : [unescapeStop($('stop-text').value)],
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

// What the model's state holds, for Continue, the next turn and saving:
// the seed that carries on the last run's random stream, the context's
// length and text, the turns so far, and how the last run ended.
const context = (demo.context = {
  continuation: null,  // {nextSeed, stopString} once there is a state to go on from
  tokens: 0,
  text: '',
  turns: [],           // conversation mode: {tokensIn, tokensOut, prefillMs, totalMs, contextTokens}
  stateBytes: null,
});

function unescapeStop(text) {
  return text.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}

const conversationMode = () => document.querySelector('input[name=mode]:checked').value === 'conversation';

function chosenTemplate() {
  const key = $('template').value;
  return key === 'custom' ? checkTemplate($('custom-template').value) : TEMPLATES[key].text;
}

function clearContext() {
  context.continuation = null;
  context.tokens = 0;
  context.text = '';
  context.turns = [];
  $('output-prompt').textContent = '';
  $('output-text').textContent = '';
  renderTurns();
}

// Text fed to the model, shown as an echo (a Text node, never HTML).
function echo(text) {
  context.text += text;
  if (!$('output-prompt').textContent) $('output-prompt').textContent = text;
  else $('output-text').append(Object.assign(document.createElement('span'), { className: 'echo', textContent: text }));
}

function settingsOrError() {
  try {
    return readSettings();
  } catch (e) {
    showError(e, 'generate-card');
    return null;
  }
}

// Generate (completion mode): a fresh run from the prompt. Send
// (conversation mode): the message as a turn on top of the kept state.
async function generate() {
  if (!model) return;
  hideError();
  const settings = settingsOrError();
  if (!settings) return;
  history.replaceState(null, '', toFragment(shareable(settings)));
  if (!conversationMode()) {
    clearContext();
    echo($('prompt').value);
    await runGeneration($('prompt').value, settings);
    return;
  }
  let text;
  try {
    text = turnText(chosenTemplate(), $('prompt').value, {
      first: !context.continuation, contextText: context.text, stopString: context.continuation?.stopString,
    });
  } catch (e) {
    showError(e, 'generate-card');
    return;
  }
  const going = context.continuation;
  if (!going) clearContext();
  echo(text);
  $('prompt').value = '';
  await runGeneration(text, going ? { ...settings, continue: true, seed: going.nextSeed } : settings, { turn: true });
}

// Goes on from the exact state the last run left: the same text as one
// uninterrupted run with the same seed.
async function continueGeneration() {
  if (!model || !context.continuation) return;
  hideError();
  const settings = settingsOrError();
  if (!settings) return;
  await runGeneration('', { ...settings, continue: true, seed: context.continuation.nextSeed });
}

function renderTurns() {
  const list = $('turns');
  list.replaceChildren(...context.turns.map((t, i) => Object.assign(document.createElement('li'), {
    textContent: `Turn ${i + 1}: ${t.tokensIn} tokens in, ${t.tokensOut} out · prompt ${t.prefillMs.toFixed(0)} ms · ` +
      `turn ${t.totalMs.toFixed(0)} ms · context ${t.contextTokens} tokens`,
  })));
  list.hidden = context.turns.length === 0;
}

async function runGeneration(input, settings, { turn = false } = {}) {
  const out = $('output-text');
  $('stats').textContent = '';
  liveRate = '';
  setState('generating');
  const run = { tokens: [], tokenTimes: [], stats: null, stopRequestedAt: null, settings, prompt: input };
  demo.lastRun = run;
  generation = model.generate(input, settings);
  memoryTimer = setInterval(updateMemory, 1000);
  let firstAt = null;
  let pending = '';
  let frame = 0;
  const flush = () => {
    frame = 0;
    if (pending) {
      out.append(pending);  // a Text node: never parsed as HTML
      context.text += pending;
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
    context.tokens += s.promptTokens + s.generatedTokens;
    context.continuation = { nextSeed: s.nextSeed, stopString: s.stopString };
    if (turn) {
      context.turns.push({ tokensIn: s.promptTokens, tokensOut: s.generatedTokens, prefillMs: s.prefillMs, totalMs: s.totalMs, contextTokens: context.tokens });
      renderTurns();
    }
    context.stateBytes ??= (await model.snapshot()).length;
    renderStats(s);
    liveRate = '';
  } catch (e) {
    if (frame) cancelAnimationFrame(frame);
    flush();
    context.continuation = null;  // the state is whatever the error left
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

function renderStats(s) {
  const why = {
    eos: 'end of text', max_tokens: 'token limit', stopped: 'stopped',
    stop: `stop string ${JSON.stringify(s.stopString)}`,
  }[s.stopReason] ?? s.stopReason;
  $('stats').textContent = [
    `${s.generatedTokens} tokens (${why})`,
    `prompt ${s.promptTokens} tokens at ${s.prefillTokensPerSecond ? s.prefillTokensPerSecond.toFixed(0) : '–'} tok/s`,
    `generation ${s.decodeTokensPerSecond ? s.decodeTokensPerSecond.toFixed(1) : '–'} tok/s`,
    `first token after ${s.timeToFirstTokenMs != null ? s.timeToFirstTokenMs.toFixed(0) : '–'} ms`,
    `context ${context.tokens} tokens`,
    ...(context.stateBytes ? [`state ${formatBytes(context.stateBytes)}`] : []),
    `seed ${s.seed}`,
  ].join(' · ');
}

function renderMode() {
  const conversation = conversationMode();
  $('conversation-options').hidden = !conversation;
  $('custom-template').hidden = $('template').value !== 'custom';
  $('generate').textContent = conversation ? 'Send' : 'Generate';
  $('prompt-label').textContent = conversation ? 'Message' : 'Prompt';
}

// What the session panel saves and restores.
const sessionHooks = {
  busy: () => !model || generation !== null,
  current() {
    if (!model || !context.continuation) return null;
    return {
      model: { url: loadedFrom, sha256: model.info.sha256 },
      settings: readSettings(),
      mode: conversationMode() ? 'conversation' : 'completion',
      template: $('template').value === 'custom' ? $('custom-template').value : $('template').value,
      text: context.text,
      turns: context.turns,
      contextTokens: context.tokens,
      nextSeed: context.continuation.nextSeed,
      stopString: context.continuation.stopString,
    };
  },
  snapshot: () => model.snapshot(),
  modelInfo: () => model?.info ?? null,
  async restore(session) {
    await model.restore(session.snapshot);
    clearContext();
    Object.assign(context, {
      continuation: { nextSeed: session.nextSeed, stopString: session.stopString ?? null },
      tokens: session.contextTokens,
      turns: session.turns,
    });
    echo(session.text);
    document.querySelector(`input[name=mode][value=${session.mode}]`).checked = true;
    if (TEMPLATES[session.template]) $('template').value = session.template;
    else { $('template').value = 'custom'; $('custom-template').value = session.template; }
    writeSettings(session.settings);
    renderTurns();
    renderMode();
    $('stats').textContent = `Restored: context ${context.tokens} tokens`;
    setState('ready');
  },
  showError: (e) => showError(e, 'sessions-card'),
  hideError,
};

// What a link carries: the model choice (a URL for 'url'; a local file
// cannot be linked), the prompt, the mode and the settings.
function shareable(settings) {
  const choice = document.querySelector('input[name=model]:checked').value;
  return {
    ...settings,
    model: choice === 'url' ? $('model-url').value.trim() : choice === 'file' ? null : choice,
    mode: conversationMode() ? 'conversation' : 'completion',
    template: $('template').value,
    prompt: $('prompt').value,
  };
}

function applyFragment() {
  const shared = fromFragment(location.hash);
  if (shared.model && MODELS[shared.model]) document.querySelector(`input[name=model][value=${shared.model}]`).checked = true;
  else if (shared.model) {
    $('model-url').value = shared.model;
    document.querySelector('input[name=model][value=url]').checked = true;
  }
  if (shared.mode === 'conversation' || shared.mode === 'completion') {
    document.querySelector(`input[name=mode][value=${shared.mode}]`).checked = true;
  }
  if (shared.template && TEMPLATES[shared.template]) $('template').value = shared.template;
  if (shared.prompt !== undefined) $('prompt').value = shared.prompt;
  if (shared.seed !== undefined) $('seed').value = shared.seed;
  writeSettings(shared);
}

function writeSettings(s) {
  const fields = { temperature: 'temperature', repetitionPenalty: 'repetition-penalty', minP: 'min-p', topP: 'top-p', topK: 'top-k', maxTokens: 'max-tokens' };
  for (const [key, id] of Object.entries(fields)) if (Number.isFinite(s[key])) $(id).value = String(s[key]);
  if (s.stop) $('stop-text').value = (s.stop[0] ?? '').replace(/\n/g, '\\n');
}

function init() {
  $('load').addEventListener('click', loadModel);
  $('cancel-load').addEventListener('click', () => loadController?.abort());
  $('generate').addEventListener('click', generate);
  $('continue').addEventListener('click', continueGeneration);
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
  for (const radio of document.querySelectorAll('input[name=mode]')) radio.addEventListener('change', renderMode);
  $('template').addEventListener('change', () => {
    $('stop-text').value = TEMPLATES[$('template').value].stop.replace(/\n/g, '\\n');
    renderMode();
  });
  initSessionPanel(sessionHooks);
  applyFragment();
  renderMode();
  renderEnv(null);
  renderCache();
  setState('idle');
}

init();
