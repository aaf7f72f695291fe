// The models every browser test serves, made with the native CLI once per
// build folder, and the CLI's own answers for them: engines.mjs (every
// engine) and run.mjs (Chromium only) share these.

import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

/** The prompt (as ids) and sampling settings every harness checks against the CLI. */
export const PROMPT_TOKENS = [464, 2106, 286, 262, 13570, 1803, 6140];
export const SAMPLING_CASES = [
  { seed: 1, maxTokens: 40 },
  { seed: 7, maxTokens: 40, temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 },
  { seed: 123456789, maxTokens: 40, temperature: 1.3, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1.3 },
  { seed: 3, maxTokens: 40, temperature: 0.5, topK: 5, topP: 0.5, minP: 0.2, repetitionPenalty: 1 },
];

/**
 * Makes (if missing) in modelsDir the offline demo model (as scripts/serve.mjs
 * makes it), its compact q8 form, and two broken variants in memory; returns
 * them with `cli` (runs the native CLI, throws on failure) and `nativeTokens`;
 * also a second model of the same size (`changedModel`, seed 2).
 */
export function testModels(cliPath, modelsDir) {
  function cli(cliArgs) {
    const r = spawnSync(cliPath, cliArgs, { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`bitmamba ${cliArgs.join(' ')} failed: ${r.stderr || r.error}`);
    return r.stdout;
  }

  fs.mkdirSync(modelsDir, { recursive: true });
  const demoModel = path.join(modelsDir, 'bitmamba-demo.bin');
  if (!fs.existsSync(demoModel)) cli(['make-model', '--preset', 'tiny', '--seed', '1', '--out', demoModel]);
  const demoBytes = fs.readFileSync(demoModel);
  const truncated = demoBytes.subarray(0, Math.floor(demoBytes.length * 0.6));
  // Code 3 in the last byte of lm_head: the header and size are right, the engine must refuse it.
  const code3 = Buffer.from(demoBytes);
  code3[code3.length - 1] = 0xff;

  // The same model with compact (int8 rows) embeddings, as `bitmamba convert`
  // writes it; a page must load it like any other file.
  const compactModel = path.join(modelsDir, 'bitmamba-demo.q8.bin');
  if (!fs.existsSync(compactModel)) cli(['convert', demoModel, compactModel, '--embed', 'q8']);

  // Another model of the same size (seed 2): the file a server swaps in mid-download.
  const changedModel = path.join(modelsDir, 'bitmamba-demo-seed2.bin');
  if (!fs.existsSync(changedModel)) cli(['make-model', '--preset', 'tiny', '--seed', '2', '--out', changedModel]);

  /** Tokens the native CLI generates with the given settings (from the demo model unless told). */
  function nativeTokens(tokens, s, model = demoModel) {
    const json = cli(['run', model, '--tokens', tokens.join(' '), '--json',
      '--seed', String(s.seed), '--max-tokens', String(s.maxTokens),
      '--temp', String(s.temperature ?? 0.8), '--repeat-penalty', String(s.repetitionPenalty ?? 1.15),
      '--min-p', String(s.minP ?? 0.05), '--top-p', String(s.topP ?? 0.9), '--top-k', String(s.topK ?? 40),
      ...(s.stop ?? []).flatMap((text) => ['--stop', text])]);
    return JSON.parse(json).tokens;
  }

  /**
   * A stop string the CLI's tokens split: the last two characters of one
   * token's text and the first two of the next, past the 8th token and not
   * seen earlier in the text; with the CLI's tokens when it stops on it.
   */
  function stopCase(tokens, settings, scratchDir) {
    const file = path.join(scratchDir, 'pieces.jsonl');
    fs.writeFileSync(file, `${nativeTokens(tokens, settings).map((t) => JSON.stringify([t])).join('\n')}\n`);
    const pieces = cli(['detokenize', '--jsonl', file]).trim().split('\n').map((line) => JSON.parse(line));
    let text = '';
    for (let k = 0; k + 1 < pieces.length; k++) {
      const [a, b] = [pieces[k], pieces[k + 1]];
      text += a;
      if (k < 8 || a.length < 2 || b.length < 2) continue;
      const stop = a.slice(-2) + b.slice(0, 2);
      if (/[\uFFFD\uD800-\uDFFF]/.test(stop) || (text + b[0]).includes(stop)) continue;
      const withStop = { ...settings, stop: [stop, 'never 12345'] };
      return { settings: withStop, splitAfter: k + 1, tokens: nativeTokens(tokens, withStop) };
    }
    throw new Error('no two neighbouring tokens to split a stop string across');
  }

  return { cli, demoModel, demoBytes, truncated, code3, compactModel, changedModel, nativeTokens, stopCase };
}
