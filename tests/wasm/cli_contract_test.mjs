// The wasm CLI keeps the native CLI's contract: for each case, the same
// stdout, stderr and exit status byte for byte from build/release/cli/bitmamba
// and from scripts/bitmamba-node (the same sources built to wasm), errors
// included. Files a command writes (make-model, logits) must be identical too.
// Cases whose stderr carries timings (run's stats line, make-model's,
// perplexity's progress) compare stdout, the exit status and the files only;
// perplexity --json's tokens_per_s is left out of the comparison.
//
//   node cli_contract_test.mjs --bitmamba CLI --runner RUNNER --variant V --workdir DIR
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const o = {};
for (let i = 2; i < process.argv.length; i += 2) o[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['bitmamba', 'runner', 'workdir']) o[k] = path.resolve(o[k]);  // commands run in workdir
fs.mkdirSync(o.workdir, { recursive: true });
const here = (name) => path.join(o.workdir, name);

function exec(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: o.workdir, maxBuffer: 1 << 26, timeout: 300000 });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

// The tiny model, its first 4 KiB as a truncated one, and inputs for --jsonl.
const model = here('tiny.bin');
exec(o.bitmamba, ['make-model', '--preset', 'tiny', '--seed', '9', '--out', model]);
fs.writeFileSync(here('truncated.bin'), fs.readFileSync(model).subarray(0, 4096));
fs.writeFileSync(here('texts.jsonl'), '"Hello, world!"\n"caf\\u00e9 \\ud83d\\ude00"\n');
fs.writeFileSync(here('bad.jsonl'), '"fine"\n42\n');
fs.writeFileSync(here('text.txt'), 'The quick brown fox jumps over the lazy dog.\n\n = Caf\u00e9 =  \t12.5 %\n');
fs.writeFileSync(here('tasks.jsonl'), [
  { context: 'The capital of France is', choices: [' Paris', ' London'], label: 0 },
  { context: 'Answer: ', choices: ['yes', 'no', 'maybe'], label: 2 },
  { context: '', choices: ['A sentence.', 'Another one.'], label: 1 },
].map((item) => JSON.stringify(item) + '\n').join(''));
fs.writeFileSync(here('bad-tasks.jsonl'), '{"context": "a", "choices": ["b"], "label": 0}\n{"context": "a", "choices": ["b"], "label": 1}\n');

// [label, args, what to compare besides stdout and status, files written]
const CASES = [
  ['help', ['--help']],
  ['no command', []],
  ['unknown command', ['frobnicate']],
  ['tokenize', ['tokenize', 'Hello, world! café 😀 \t\n  spaces']],
  ['tokenize --jsonl', ['tokenize', '--jsonl', 'texts.jsonl']],
  ['tokenize --jsonl, a line that is not a string', ['tokenize', '--jsonl', 'bad.jsonl']],
  ['tokenize, missing file', ['tokenize', '--text-file', 'no-such-file.txt']],
  ['tokenize, usage', ['tokenize', '--bogus', 'x']],
  ['detokenize', ['detokenize', '15496 11 995 0 50255']],
  ['detokenize, half a character', ['detokenize', '171']],
  ['detokenize, junk id', ['detokenize', '15496 x1']],
  ['detokenize, id outside the vocabulary', ['detokenize', '50257']],
  ['run --tokens', ['run', 'tiny.bin', '--tokens', '1 2 3 50256', '--max-tokens', '24', '--seed', '7'], 'no-stderr'],
  ['run --prompt', ['run', 'tiny.bin', '--prompt', 'Once upon a time', '--max-tokens', '24', '--temp', '1.2'], 'no-stderr'],
  ['run, positional form', ['tiny.bin', '464 3290', 'raw', '0.7', '1.1', '0.05', '0.9', '40', '16'], 'no-stderr'],
  ['run, missing model', ['run', 'no-such-model.bin', '--tokens', '1']],
  ['run, truncated model', ['run', 'truncated.bin', '--tokens', '1']],
  ['run, id outside the vocabulary', ['run', 'tiny.bin', '--tokens', '1 60000']],
  ['run, NaN temperature', ['run', 'tiny.bin', '--tokens', '1', '--temp', 'nan']],
  ['run, both prompts', ['run', 'tiny.bin', '--tokens', '1', '--prompt', 'x']],
  ['run, unknown flag', ['run', 'tiny.bin', '--tokens', '1', '--frob', '2']],
  ['run, unknown --isa', ['run', 'tiny.bin', '--tokens', '1', '--isa', 'mmx']],
  ['logits', ['logits', 'tiny.bin', '--tokens', '5 6 7', '--out', 'logits-OUT.bin'], '', ['logits-OUT.bin']],
  ['logits, no tokens', ['logits', 'tiny.bin', '--tokens', '', '--out', 'x.bin']],
  ['bench, --runs 0', ['bench', 'tiny.bin', '--runs', '0']],
  ['perplexity', ['perplexity', 'tiny.bin', '--text-file', 'text.txt'], 'no-stderr'],
  ['perplexity --json --window 5', ['perplexity', 'tiny.bin', '--text-file', 'text.txt', '--json', '--window', '5'],
    'no-stderr no-timing'],
  ['perplexity, missing text file', ['perplexity', 'tiny.bin', '--text-file', 'no-such-file.txt']],
  ['perplexity, --window 0', ['perplexity', 'tiny.bin', '--text-file', 'text.txt', '--window', '0']],
  ['score --json', ['score', 'tiny.bin', '--tasks', 'tasks.jsonl', '--json'], 'no-stderr'],
  ['score, label out of range', ['score', 'tiny.bin', '--tasks', 'bad-tasks.jsonl']],
  ['make-model', ['make-model', '--vocab', '300', '--d-model', '64', '--layers', '2', '--heads', '4', '--seed', '2',
    '--out', 'made-OUT.bin'], 'no-stderr', ['made-OUT.bin']],
  ['make-model, bad shape', ['make-model', '--vocab', '300', '--d-model', '64', '--layers', '2', '--heads', '3',
    '--out', 'x.bin']],
];

const show = (b) => JSON.stringify(b.toString('utf8').slice(0, 300));
let failed = 0;
for (const [label, args, mode = '', outputs = []] of CASES) {
  const runs = ['native', 'wasm'].map((side) => {
    // Each side writes its own copy of an output file.
    const sideArgs = args.map((a) => a.replace('OUT', side));
    const r = side === 'native' ? exec(o.bitmamba, sideArgs) : exec(o.runner, ['--variant', o.variant, ...sideArgs]);
    r.files = outputs.map((f) => {
      const file = here(f.replace('OUT', side));
      return fs.existsSync(file) ? fs.readFileSync(file) : null;
    });
    return r;
  });
  const [n, w] = runs;
  const problems = [];
  if (n.status !== w.status || n.signal !== w.signal) problems.push(`exit ${n.status} vs ${w.status}`);
  if (mode.includes('no-timing')) {
    for (const r of runs) r.stdout = Buffer.from(r.stdout.toString().replace(/"tokens_per_s":[^,}]*/, ''));
  }
  if (!n.stdout.equals(w.stdout)) problems.push(`stdout ${show(n.stdout)} vs ${show(w.stdout)}`);
  if (!mode.includes('no-stderr') && !n.stderr.equals(w.stderr)) problems.push(`stderr ${show(n.stderr)} vs ${show(w.stderr)}`);
  n.files.forEach((f, i) => {
    if (!f || !w.files[i] || !f.equals(w.files[i])) problems.push(`${outputs[i]} missing or different`);
  });
  console.log(`${problems.length ? 'FAIL' : 'PASS'} ${label} (exit ${n.status})${problems.length ? ': ' + problems.join('; ') : ''}`);
  if (problems.length) ++failed;
}
console.log(`${CASES.length - failed}/${CASES.length} cases identical (${o.variant})`);
process.exit(failed ? 1 : 0);
