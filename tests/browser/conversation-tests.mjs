// The demo page as a writing tool, in Chromium: conversation turns with a
// stop string, saved sessions (save, reload, restore, continue; export and
// import; a foreign or bad file refused), the settings in the URL fragment,
// a phone-sized viewport and names for every control. run.mjs registers
// these with its own servers and helpers.

import fs from 'node:fs';
import path from 'node:path';

const GOLDEN = 0x9E3779B97F4A7C15n;
const MASK64 = (1n << 64n) - 1n;

export function conversationTests(h) {
  const { test, openBrowser, openDemo, loadViaUi, setSettings, server, nativeTokens, cli, demoModel, artifacts, assert, sameTokens, ROOT } = h;

  const ids = (page, text) => page.evaluate((t) => window.bitmambaDemo.model.tokenize(t).then(Array.from), text);
  const lastRun = (page) => page.evaluate(() => window.bitmambaDemo.lastRun);
  const runsCompleted = (page) => page.evaluate(() => window.bitmambaDemo.runsCompleted ?? 0);

  async function click(page, selector) {
    const before = await runsCompleted(page);
    await page.click(selector);
    await page.waitForFunction((n) => (window.bitmambaDemo.runsCompleted ?? 0) > n, before, { timeout: 120000 });
    return lastRun(page);
  }

  // A stop string the CLI's tokens for `promptIds` split, past the 6th token:
  // the last two characters of one token's text and the first two of the next.
  function stopStringFor(promptIds, settings) {
    const tokens = nativeTokens(promptIds, settings);
    for (let k = 6; k + 1 < tokens.length; k++) {
      const [a, b] = [cli(['detokenize', String(tokens[k])]).replace(/\n$/, ''), cli(['detokenize', String(tokens[k + 1])]).replace(/\n$/, '')];
      const before = cli(['detokenize', tokens.slice(0, k + 1).join(' ')]).replace(/\n$/, '');
      if (a.length < 2 || b.length < 2) continue;
      const stop = a.slice(-2) + b.slice(0, 2);
      if (/[\uFFFD\uD800-\uDFFF\\\n\t]/.test(stop) || (before + b[0]).includes(stop)) continue;
      return stop;
    }
    throw new Error('no two neighbouring tokens to split a stop string across');
  }

  // Two turns in conversation mode with the Question/Detailed answer
  // template. The first ends on a stop string; the second feeds only its own
  // text on top of the kept state. Both equal the CLI: the first as a run
  // with --stop, the second as a run over the whole context's tokens seeded
  // where the first left the stream (prefill and step give the same state).
  async function twoTurns(page) {
    await page.check('input[name=mode][value=conversation]');
    await page.selectOption('#template', 'qa');
    const settings = { seed: 42, maxTokens: 30 };
    await setSettings(page, settings);
    const firstText = 'Question: What did the printing press change?\nDetailed answer:';
    const firstIds = await ids(page, firstText);
    const stop = stopStringFor(firstIds, settings);
    await page.fill('#stop-text', stop);
    await page.fill('#prompt', 'What did the printing press change?');
    const first = await click(page, '#generate');
    const want1 = nativeTokens(firstIds, { ...settings, stop: [stop] });
    sameTokens(first.tokens, want1, 'turn 1 vs the CLI with --stop');
    assert(first.stats.stopReason === 'stop', `turn 1 ended by ${first.stats.stopReason}`);

    await page.fill('#prompt', 'And after that?');
    const second = await click(page, '#generate');
    const fed = await ids(page, second.prompt);
    assert(second.stats.promptTokens === fed.length, `turn 2 prefilled ${second.stats.promptTokens} tokens, its text has ${fed.length}`);
    const seed = ((42n + BigInt(first.tokens.length) * GOLDEN) & MASK64).toString();
    const want2 = nativeTokens([...firstIds, ...first.tokens, ...fed], { ...settings, seed, stop: [stop] });
    sameTokens(second.tokens, want2, 'turn 2 vs the CLI over the whole context');
    return { first, second, stop, contextTokens: firstIds.length + first.tokens.length + fed.length + second.tokens.length };
  }

  test('conversation_turns_with_stop_string', async () => {
    const { context, page, problems } = await openBrowser();
    try {
      await openDemo(page, server);
      assert((await loadViaUi(page, 'demo')).state === 'ready', 'load failed');
      const { first, second, stop, contextTokens } = await twoTurns(page);
      const turns = await page.$$eval('#turns li', (items) => items.map((li) => li.textContent));
      assert(turns.length === 2, `${turns.length} turns listed`);
      assert(turns[1].includes(`context ${contextTokens} tokens`), `turn 2 shows ${turns[1]}, context should be ${contextTokens}`);
      assert((await page.textContent('#stats')).includes('state '), 'the state size is not shown');
      const shot = path.join(artifacts, 'conversation-desktop.png');
      await page.screenshot({ path: shot, fullPage: true });
      assert(problems.length === 0, problems.join('\n'));
      return `turn 1 stopped on ${JSON.stringify(stop)} after ${first.tokens.length} tokens, turn 2 prefilled only its ` +
        `${second.stats.promptTokens} tokens; both equal the CLI's; screenshot ${path.relative(ROOT, shot)}`;
    } finally {
      await context.close();
    }
  });

  test('session_save_reload_restore_continue', async () => {
    const { context, page, problems } = await openBrowser();
    try {
      await openDemo(page, server);
      assert((await loadViaUi(page, 'demo')).state === 'ready', 'load failed');
      await twoTurns(page);
      await page.fill('#session-title', 'press');
      await page.click('#save-session');
      await page.waitForFunction(() => document.querySelectorAll('#session-list li').length === 1);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#session-list li button:has-text("Export")')]);
      const exported = path.join(artifacts, 'press.bitmamba-session.json');
      await download.saveAs(exported);
      // Never reloading: Continue from here.
      const stayed = await click(page, '#continue');

      await page.reload();
      await page.waitForFunction(() => window.bitmambaDemo && window.bitmambaDemo.state === 'idle');
      await page.waitForFunction(() => document.querySelectorAll('#session-list li').length === 1);
      assert((await loadViaUi(page, 'demo')).state === 'ready', 'second load failed');
      await page.click('#session-list li button:has-text("Restore")');
      await page.waitForFunction(() => /Restored/.test(document.getElementById('sessions-status').textContent));
      const restored = await click(page, '#continue');
      sameTokens(restored.tokens, stayed.tokens, 'continue after save, reload and restore vs never reloading');

      // The exported file imports as a second session and restores the same state.
      await page.setInputFiles('#import-session', exported);
      await page.waitForFunction(() => document.querySelectorAll('#session-list li').length === 2);
      await page.click('#session-list li:nth-child(1) button:has-text("Restore")');
      await page.waitForFunction(() => window.bitmambaDemo.context.continuation !== null);
      const imported = await click(page, '#continue');
      sameTokens(imported.tokens, stayed.tokens, 'continue after importing the exported file');
      assert(problems.length === 0, problems.join('\n'));
      return `continue after save → reload → restore, and after export → import → restore, gives the ${stayed.tokens.length} tokens of never reloading`;
    } finally {
      await context.close();
    }
  });

  test('foreign_and_bad_session_files_refused', async () => {
    const { context, page } = await openBrowser();
    try {
      await openDemo(page, server);
      assert((await loadViaUi(page, 'demo')).state === 'ready', 'load failed');
      await page.fill('#prompt', 'The printing press');
      await setSettings(page, { seed: 3, maxTokens: 8 });
      await click(page, '#generate');
      await page.click('#save-session');
      await page.waitForFunction(() => document.querySelectorAll('#session-list li').length === 1);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#session-list li button:has-text("Export")')]);
      const good = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
      const before = await page.evaluate(() => ({ ...window.bitmambaDemo.context, turns: undefined }));

      const files = {
        'foreign.json': JSON.stringify({ ...good, savedAt: new Date(Date.now() + 60000).toISOString(), model: { url: 'other.bin', sha256: 'ab'.repeat(32) } }),
        'not-json.json': 'this is not a session',
        'truncated.json': JSON.stringify(good).slice(0, 200),
        'no-snapshot.json': JSON.stringify({ ...good, snapshot: '' }),
      };
      const seen = [];
      for (const [name, body] of Object.entries(files)) {
        const file = path.join(artifacts, name);
        fs.writeFileSync(file, body);
        await page.setInputFiles('#import-session', file);
        if (name === 'foreign.json') {
          await page.waitForFunction(() => document.querySelectorAll('#session-list li').length === 2);
          await page.click('#session-list li:nth-child(1) button:has-text("Restore")');
        }
        await page.waitForFunction(() => !document.getElementById('error').hidden);
        const code = await page.evaluate(() => document.getElementById('error').dataset.code);
        seen.push(`${name}→${code}`);
        assert(code === (name === 'foreign.json' ? 'other_model' : 'bad_session'), `${name} gave ${code}`);
        await page.click('#error-close');
      }
      const after = await page.evaluate(() => ({ ...window.bitmambaDemo.context, turns: undefined }));
      assert(JSON.stringify(after) === JSON.stringify(before), 'a refused session changed the page\'s state');
      assert(await page.$$eval('#session-list li', (l) => l.length) === 2, 'a bad file was added to the list');
      return `${seen.join(', ')}; the page's state and list unchanged`;
    } finally {
      await context.close();
    }
  });

  test('url_fragment_round_trip', async () => {
    const { context, page } = await openBrowser();
    try {
      const shared = new URLSearchParams({ model: 'demo', mode: 'completion', prompt: 'A link that reproduces', seed: '12345678901234567890', maxTokens: '16', temperature: '0.9', topK: '20' });
      await page.goto(`${server.url}#${shared}`);
      await page.waitForFunction(() => window.bitmambaDemo && window.bitmambaDemo.state === 'idle');
      assert(await page.inputValue('#seed') === '12345678901234567890', 'the seed was not taken from the link');
      assert((await loadViaUi(page, 'demo')).state === 'ready', 'load failed');
      const run = await click(page, '#generate');
      const settings = { seed: '12345678901234567890', maxTokens: 16, temperature: 0.9, topK: 20 };
      sameTokens(run.tokens, nativeTokens(await ids(page, 'A link that reproduces'), settings), 'a generation from a link vs the CLI');
      const hash = await page.evaluate(() => location.hash);
      const back = new URLSearchParams(hash.slice(1));
      for (const [key, value] of shared) assert(back.get(key) === value, `the link lost ${key}: ${back.get(key)} for ${value}`);
      return `a link's model, prompt, seed (above 2^63) and settings give the CLI's ${run.tokens.length} tokens, and the page writes them back`;
    } finally {
      await context.close();
    }
  });

  test('phone_viewport_and_control_names', async () => {
    const { context, page } = await openBrowser();
    try {
      await page.setViewportSize({ width: 390, height: 844 });
      await openDemo(page, server);
      assert((await loadViaUi(page, 'demo')).state === 'ready', 'load failed');
      await twoTurns(page);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(overflow <= 0, `the page is ${overflow} px wider than a 390 px screen`);
      const shot = path.join(artifacts, 'conversation-phone.png');
      await page.screenshot({ path: shot, fullPage: true });
      // Every control has a name a screen reader can say.
      const unnamed = await page.evaluate(() => [...document.querySelectorAll('button, input, select, textarea')]
        .filter((el) => !el.closest('[hidden]') && !(el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') ||
          (el.tagName === 'BUTTON' && el.textContent.trim())))
        .map((el) => el.id || el.outerHTML.slice(0, 60)));
      assert(unnamed.length === 0, `controls without a name: ${unnamed.join(', ')}`);
      // The keyboard reaches the conversation controls.
      await page.focus('#prompt');
      const reached = new Set();
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press('Tab');
        reached.add(await page.evaluate(() => document.activeElement?.id));
      }
      for (const id of ['continue', 'temperature', 'stop-text', 'save-session']) assert(reached.has(id), `Tab never reaches #${id}`);
      return `no horizontal overflow at 390 × 844; every control named and reachable by Tab; screenshot ${path.relative(ROOT, shot)}`;
    } finally {
      await context.close();
    }
  });
}
