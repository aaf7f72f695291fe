// The demo page's "Sessions" card: save the conversation and the model's
// state, list what is saved, restore, export and import. The page supplies
// the hooks (what to save, how to restore); sessions.js keeps the records.

import {
  listSessions, saveSession, deleteSession, makeSession, requireSameModel, exportSession, importSession,
} from './sessions.js';

const $ = (id) => document.getElementById(id);

export function initSessionPanel(hooks) {
  const status = (text) => { $('sessions-status').textContent = text; };

  async function render() {
    let sessions = [];
    try {
      sessions = await listSessions();
    } catch (e) {
      status(e.message);
    }
    $('session-list').replaceChildren(...sessions.map((s) => sessionItem(s)));
    $('sessions-summary').textContent = sessions.length ? `(${sessions.length})` : '';
  }

  function button(label, onClick, ariaLabel) {
    const b = Object.assign(document.createElement('button'), { type: 'button', textContent: label });
    if (ariaLabel) b.setAttribute('aria-label', ariaLabel);
    b.addEventListener('click', onClick);
    return b;
  }

  function sessionItem(session) {
    const li = document.createElement('li');
    const when = new Date(session.savedAt).toLocaleString();
    li.append(Object.assign(document.createElement('span'), {
      className: 'session-title',
      textContent: `${session.title} · ${session.contextTokens} tokens · ${when}`,
    }));
    li.append(
      button('Restore', () => restore(session), `Restore ${session.title}`),
      button('Export', () => download(session), `Export ${session.title}`),
      button('Delete', async () => { await deleteSession(session.id); render(); }, `Delete ${session.title}`),
    );
    return li;
  }

  async function restore(session) {
    hooks.hideError();
    try {
      if (hooks.busy()) throw Object.assign(new Error('Load a model (and let any generation end) before restoring.'), { code: 'invalid_argument' });
      requireSameModel(session, hooks.modelInfo());
      await hooks.restore(session);
      status(`Restored "${session.title}".`);
    } catch (e) {
      hooks.showError(e);
    }
  }

  function download(session) {
    const blob = new Blob([exportSession(session)], { type: 'application/json' });
    const a = Object.assign(document.createElement('a'), {
      href: URL.createObjectURL(blob),
      download: `${session.title.replace(/[^\w.-]+/g, '_') || 'session'}.bitmamba-session.json`,
    });
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  $('save-session').addEventListener('click', async () => {
    hooks.hideError();
    try {
      const current = hooks.current();
      if (!current) throw Object.assign(new Error('Generate something first: there is no state to save yet.'), { code: 'invalid_argument' });
      const title = $('session-title').value.trim() || current.text.slice(0, 40).replace(/\s+/g, ' ').trim() || 'Session';
      const snapshot = await hooks.snapshot();
      await saveSession(makeSession({ ...current, title, snapshot }));
      $('session-title').value = '';
      status(`Saved "${title}".`);
      render();
    } catch (e) {
      hooks.showError(e);
    }
  });

  $('import-session').addEventListener('change', async (event) => {
    hooks.hideError();
    const file = event.target.files[0];
    event.target.value = '';
    if (!file) return;
    try {
      const session = importSession(await file.text());
      await saveSession({ ...session, id: crypto.randomUUID() });
      status(`Imported "${session.title}"; restore it once its model is loaded.`);
      render();
    } catch (e) {
      hooks.showError(e);
    }
  });

  render();
}
