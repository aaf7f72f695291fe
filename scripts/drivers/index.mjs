// The browser drivers by engine name: chromium, firefox, webkit.
export const ENGINES = ['chromium', 'firefox', 'webkit'];

export async function driverFor(engine) {
  if (!ENGINES.includes(engine)) throw new Error(`unknown browser ${engine}: one of ${ENGINES.join(', ')}`);
  return import(`./${engine}.mjs`);
}
