// Opt-in cross-origin isolation for static hosts that cannot send headers
// (the approach of the coi-serviceworker package, written for this page).
//
// WebAssembly threads need SharedArrayBuffer, which browsers only give to
// pages served with
//   Cross-Origin-Opener-Policy: same-origin
//   Cross-Origin-Embedder-Policy: require-corp
// When the server cannot send them, this file, registered as a service
// worker, adds them to the page's own document and worker responses. It is
// one file in two roles:
//   - in the page (a classic <script> in <head>) it does nothing unless the
//     person turned it on (window.bitmambaCoi.enable(), stored in
//     localStorage); then it registers itself and reloads once;
//   - as the service worker it rewrites same-origin document/worker
//     responses and leaves every other request alone.
// Other cross-origin requests are unaffected: the model download uses CORS,
// which require-corp accepts.

/* global ServiceWorkerGlobalScope */
(() => {
  const FLAG = 'bitmamba-coi';
  const RELOADED = 'bitmamba-coi-reloaded';

  if (typeof ServiceWorkerGlobalScope !== 'undefined' && self instanceof ServiceWorkerGlobalScope) {
    self.addEventListener('install', () => self.skipWaiting());
    self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
    self.addEventListener('fetch', (event) => {
      const request = event.request;
      const isolate = request.mode === 'navigate' ||
        ['document', 'iframe', 'worker', 'sharedworker'].includes(request.destination);
      if (!isolate || new URL(request.url).origin !== self.location.origin) return;
      event.respondWith(fetch(request).then((response) => {
        if (response.status === 0 || response.type === 'opaqueredirect') return response;
        const headers = new Headers(response.headers);
        headers.set('Cross-Origin-Opener-Policy', 'same-origin');
        headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
        return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
      }));
    });
    return;
  }

  const script = document.currentScript && document.currentScript.src;
  const possible = !!script && window.isSecureContext && 'serviceWorker' in navigator;
  const enabled = () => { try { return localStorage.getItem(FLAG) === 'on'; } catch { return false; } };

  async function register() {
    const registration = await navigator.serviceWorker.register(script);
    if (window.crossOriginIsolated) return registration;
    // The headers apply from the next load of the page on; reload once only,
    // so a browser that ignores them does not loop.
    if (sessionStorage.getItem(RELOADED) === '1') return registration;
    const reload = () => { sessionStorage.setItem(RELOADED, '1'); location.reload(); };
    if (navigator.serviceWorker.controller) reload();
    else navigator.serviceWorker.addEventListener('controllerchange', reload, { once: true });
    return registration;
  }

  window.bitmambaCoi = {
    /** A service worker could isolate this page (secure context, not isolated yet). */
    available: () => possible && !window.crossOriginIsolated,
    enabled,
    async enable() {
      if (!possible) return;
      localStorage.setItem(FLAG, 'on');
      sessionStorage.removeItem(RELOADED);
      await register();
    },
    async disable() {
      localStorage.removeItem(FLAG);
      const registrations = await navigator.serviceWorker.getRegistrations();
      for (const r of registrations) if (r.active && r.active.scriptURL === script) await r.unregister();
      location.reload();
    },
  };

  if (possible && enabled()) {
    register().catch((e) => console.warn('BitMamba: could not register the isolation service worker:', e));
  }
})();
