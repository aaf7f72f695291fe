// Shareable settings: the model, the prompt and the sampling settings in the
// page's URL fragment (never sent to a server), so a link reproduces a
// generation: same model, same seed, same text.

const NUMBERS = ['temperature', 'repetitionPenalty', 'minP', 'topP', 'topK', 'maxTokens'];

/** A fragment ('#…') for {model, prompt, mode, template, stop, seed, temperature, …}. */
export function toFragment(shared) {
  const p = new URLSearchParams();
  for (const key of ['model', 'mode', 'template', 'prompt', 'seed', ...NUMBERS]) {
    if (shared[key] !== undefined && shared[key] !== null && shared[key] !== '') p.set(key, String(shared[key]));
  }
  for (const stop of shared.stop ?? []) p.append('stop', stop);
  return `#${p}`;
}

/** The settings a fragment carries; unknown keys and malformed numbers are left out. */
export function fromFragment(hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const shared = {};
  for (const key of ['model', 'mode', 'template', 'prompt']) if (p.has(key)) shared[key] = p.get(key);
  if (/^\d+$/.test(p.get('seed') ?? '')) shared.seed = p.get('seed');
  for (const key of NUMBERS) {
    const v = Number(p.get(key));
    if (p.has(key) && p.get(key).trim() !== '' && Number.isFinite(v)) shared[key] = v;
  }
  if (p.has('stop')) shared.stop = p.getAll('stop');
  return shared;
}
