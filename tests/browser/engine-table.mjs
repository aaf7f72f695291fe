// The engine table of docs/browser.md, read as the browser tests' expectation:
// what each engine runs (SIMD build, threads, model cache, how a download's
// body is read). The code under
// test never reads it; the tests compare what a page reports with it.

import fs from 'node:fs';

const HEADER = '| Engine | SIMD build | Threads | Model cache | Download reader |';

// A cell's first word: "one: no SharedArrayBuffer …" → "one".
const firstWord = (cell) => cell.split(/[\s:,]/)[0];

/** {chromium: {label, variant, threads: 'several'|'one', cache: 'OPFS'|'none', reader: 'byob'|'default'}, ...} */
export function readEngineTable(docFile) {
  const lines = fs.readFileSync(docFile, 'utf8').split('\n');
  const start = lines.indexOf(HEADER);
  if (start < 0) throw new Error(`${docFile} has no engine table (${HEADER})`);
  const table = {};
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const [label, simd, threads, cache, reader] = line.split('|').slice(1, -1).map((c) => c.trim());
    const key = label.match(/^(Chromium|Firefox|WebKit)/)?.[1].toLowerCase();
    if (!key) throw new Error(`engine table row for an unknown engine: ${line}`);
    table[key] = { label, variant: firstWord(simd), threads: firstWord(threads), cache: firstWord(cache), reader: firstWord(reader ?? '') };
  }
  return table;
}

/** Differences between what a page reported (model.info, cache mode) and the table row. */
export function compareWithTable(row, info, cacheMode) {
  const problems = [];
  if (info.variant !== row.variant) problems.push(`SIMD build ${info.variant}, the table says ${row.variant} (${info.variantReason})`);
  const threads = info.threads > 1 ? 'several' : 'one';
  if (threads !== row.threads) problems.push(`${info.threads} thread(s), the table says ${row.threads} (${info.threadsReason})`);
  const cache = cacheMode === 'hit' ? 'OPFS' : 'none';
  if (cache !== row.cache) problems.push(`model cache ${cacheMode}, the table says ${row.cache} (${info.cache.message ?? info.cache.status})`);
  if (info.reader !== row.reader) problems.push(`download reader ${info.reader}, the table says ${row.reader}`);
  return problems;
}
