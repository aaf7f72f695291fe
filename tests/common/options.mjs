// Command-line options of the test programs: `--name value` pairs, each name
// one of the defaults' keys (node:util's parseArgs, strict, so an unknown or
// valueless option is an error). The keys in `paths` are resolved against
// the working directory when given.
import path from 'node:path';
import { parseArgs } from 'node:util';

export function parseOptions(argv, defaults, paths = []) {
  const options = Object.fromEntries(Object.entries(defaults).map(([name, value]) =>
    [name, value == null ? { type: 'string' } : { type: 'string', default: value }]));
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  const o = { ...Object.fromEntries(Object.keys(defaults).map((k) => [k, null])), ...values };
  for (const k of paths) if (o[k]) o[k] = path.resolve(o[k]);
  return o;
}
