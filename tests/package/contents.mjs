#!/usr/bin/env node
// What the packed tarball holds: exactly the files a page needs (the API,
// the worker and every module they import, both wasm builds with their
// pthread glue, the SHA-256 module, the types, README and package.json), a package.json a
// bundler and TypeScript resolve (exports, types, files, a semver version),
// and a README that opens with a short example.
//
//   node tests/package/contents.mjs --tarball build/package/bitmamba-web-X.Y.Z.tgz

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tarball = path.resolve(process.argv[process.argv.indexOf('--tarball') + 1] ?? '');
if (!fs.existsSync(tarball)) {
  console.log(`package tests skipped: no tarball at ${tarball}`);
  process.exit(77);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmamba-package-'));
const problems = [];
try {
  const r = spawnSync('tar', ['-xzf', tarball, '-C', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  const pkgDir = path.join(dir, 'package');
  const files = fs.readdirSync(pkgDir, { recursive: true }).filter((f) => fs.statSync(path.join(pkgDir, f)).isFile()).sort();
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));

  // The manifest.
  if (pkg.name !== 'bitmamba-web') problems.push(`name is ${pkg.name}`);
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(pkg.version)) problems.push(`version ${pkg.version} is not semver`);
  if (pkg.private) problems.push('the package is private');
  if (pkg.type !== 'module') problems.push('type is not module');
  if (!pkg.license) problems.push('no license field');
  if (pkg.exports?.['.']?.default !== './bitmamba.js' || pkg.exports?.['.']?.types !== './bitmamba.d.ts') {
    problems.push(`exports['.'] is ${JSON.stringify(pkg.exports?.['.'])}`);
  }
  if (pkg.types !== './bitmamba.d.ts') problems.push(`types is ${pkg.types}`);
  if (path.basename(tarball) !== `bitmamba-web-${pkg.version}.tgz`) problems.push(`the tarball's name does not carry version ${pkg.version}`);

  // Exactly the listed files, and every engine file of both builds.
  const want = [...pkg.files, 'package.json', 'README.md'].sort();
  const extra = files.filter((f) => !want.includes(f));
  const missing = want.filter((f) => !files.includes(f));
  if (extra.length) problems.push(`files not listed in "files": ${extra.join(', ')}`);
  if (missing.length) problems.push(`listed but not packed: ${missing.join(', ')}`);
  for (const variant of ['simd128', 'relaxed']) {
    for (const ext of ['js', 'wasm', 'worker.js']) {
      if (!files.includes(`dist/bitmamba-${variant}.${ext}`)) problems.push(`dist/bitmamba-${variant}.${ext} is missing`);
    }
  }
  if (!files.includes('dist/bitmamba-sha256.wasm')) problems.push('dist/bitmamba-sha256.wasm (the download hash) is missing');

  // Every module a packed module names, statically, dynamically or as a
  // worker URL, is packed too: nothing refers back into the repository.
  // wasm-engine.js's own default (the repository's build folder, for the
  // Node tests) is never used by the package: the worker always passes wasmBase.
  const repositoryOnly = new Set(['wasm-engine.js ../build/wasm/dist/']);
  const reference = /(?:from\s+|import\s*\(\s*|new URL\(\s*)['"](\.{1,2}\/[^'"]*)['"]/g;
  for (const f of files.filter((name) => name.endsWith('.js') && !name.startsWith('dist/'))) {
    for (const [, spec] of fs.readFileSync(path.join(pkgDir, f), 'utf8').matchAll(reference)) {
      if (repositoryOnly.has(`${f} ${spec}`)) continue;
      const target = path.join(path.dirname(f), spec);
      if (spec.endsWith('/') ? !files.some((p) => p.startsWith(target)) : !files.includes(target)) {
        problems.push(`${f} refers to ${spec}, which is not in the package`);
      }
    }
  }

  // The README opens with the example: install, import, load, generate.
  const readme = fs.readFileSync(path.join(pkgDir, 'README.md'), 'utf8');
  const example = readme.match(/```js\n([\s\S]*?)```/)?.[1] ?? '';
  const lines = example.trim().split('\n').length;
  if (!example.includes("from 'bitmamba-web'") || !example.includes('BitMamba.load(') || !example.includes('.generate(')) {
    problems.push('the README has no js example that imports, loads and generates');
  } else if (lines > 10) problems.push(`the README example has ${lines} lines, more than 10`);

  // The repository's own package.json stays private tooling.
  if (!JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).private) problems.push('the root package.json is not private');

  const bytes = fs.statSync(tarball).size;
  if (problems.length) {
    for (const p of problems) console.log(`FAIL package_contents: ${p}`);
    process.exit(1);
  }
  console.log(`ok   package_contents: ${files.length} files, tarball ${(bytes / 1024).toFixed(0)} KiB, ` +
    `version ${pkg.version}, README example ${lines} lines`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
