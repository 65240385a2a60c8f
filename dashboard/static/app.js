// The dashboard's entry point: session, routing and page frame. Routes live
// in the URL's fragment (#/tokens, #/tokens/3, #/overview?days=30), so the
// server serves one page and every link survives a reload.
import { h, replace } from './dom.js';
import { createApi } from './api.js';
import { loginView } from './views/login.js';
import { tokensView } from './views/tokens.js';
import { createView, editView } from './views/form.js';
import { detailView } from './views/detail.js';
import { overviewView } from './views/overview.js';

const KEY = 'apitoken.dashboard.secret';
const meta = document.querySelector('meta[name="apitoken-api-base"]');
const apiBase = new URL(meta ? meta.content : '..', document.baseURI).href.replace(/\/+$/, '');
const appTitle = document.title;

// The admin secret lives in sessionStorage: this tab only, gone when it
// closes, never in a cookie.
let memory = '';
const session = {
  get() {
    try { return sessionStorage.getItem(KEY) || ''; } catch { return ''; }
  },
  set(v) {
    try { sessionStorage.setItem(KEY, v); } catch { /* storage disabled: this page view only */ }
    memory = v;
  },
  clear() {
    try { sessionStorage.removeItem(KEY); } catch { /* nothing stored */ }
    memory = '';
  },
};
const secret = () => session.get() || memory;

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOut = document.getElementById('signout');
const toast = document.getElementById('toast');
const alertBox = document.getElementById('alert');

let flash = '';
let current = null;
let firstRender = true;

function announce(msg, isError = false) {
  const el = isError ? alertBox : toast;
  const other = isError ? toast : alertBox;
  other.textContent = '';
  el.textContent = '';
  // A fresh text node makes screen readers announce a repeated message.
  requestAnimationFrame(() => { el.textContent = msg; });
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => { el.textContent = ''; }, isError ? 12000 : 4000);
}

function parse(hash) {
  if (hash === '' || hash === '#' || hash === '#/') return { path: ['tokens'], params: new URLSearchParams() };
  if (!hash.startsWith('#/')) return null; // an in-page anchor such as #main
  const [p, q] = hash.slice(2).split('?');
  let path;
  try {
    path = p.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    path = ['not-found']; // a malformed %-escape
  }
  return { path, params: new URLSearchParams(q || '') };
}

function unauthorized() {
  if (!secret()) return;
  session.clear();
  flash = 'The admin API refused the admin secret (401): it may have changed. Sign in again.';
  render();
}

function render() {
  let route = parse(location.hash);
  if (!route) {
    if (!firstRender) return; // an in-page anchor: nothing to route
    route = parse('');
  }
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const signedIn = Boolean(secret());
  nav.hidden = !signedIn;
  signOut.hidden = !signedIn;
  replace(main);

  const ctx = {
    main,
    params: route.params,
    signal: controller.signal,
    announce,
    setTitle: (t) => { document.title = `${t} · ${appTitle}`; },
    go: (hash) => {
      if (location.hash === hash) render();
      else location.hash = hash;
    },
    replaceParams: (obj) => {
      const q = new URLSearchParams(route.params);
      for (const [k, v] of Object.entries(obj)) {
        if (v === null || v === undefined || v === '') q.delete(k);
        else q.set(k, String(v));
      }
      route.params = q;
      const qs = q.toString();
      history.replaceState(null, '', `#/${route.path.map(encodeURIComponent).join('/')}${qs ? `?${qs}` : ''}`);
    },
  };

  if (!signedIn) {
    const msg = flash;
    flash = '';
    loginView(ctx, {
      apiBase,
      flash: msg,
      onSignedIn: (s) => {
        session.set(s);
        announce('Signed in.');
        render();
      },
    });
    firstRender = false;
    return;
  }
  ctx.api = createApi(apiBase, secret(), unauthorized);

  const [a, b, c] = route.path;
  let section = a;
  if (a === 'tokens' && b === 'new' && !c) createView(ctx);
  else if (a === 'tokens' && /^\d+$/.test(b || '') && c === 'edit') editView(ctx, b);
  else if (a === 'tokens' && /^\d+$/.test(b || '') && !c) detailView(ctx, b);
  else if (a === 'tokens' && !b) tokensView(ctx);
  else if (a === 'overview' && !b) overviewView(ctx);
  else {
    section = '';
    ctx.setTitle('Not found');
    main.append(h('h1', { tabindex: '-1' }, 'Page not found'), h('p', null, h('a', { href: '#/tokens' }, 'Go to the token list')));
  }
  for (const link of nav.querySelectorAll('a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // Move focus to the new page's heading, as a page load would, so screen
  // readers announce it (not on the first load: focus starts at the top).
  if (!firstRender) {
    const h1 = main.querySelector('h1');
    if (h1 && !main.contains(document.activeElement)) h1.focus({ preventScroll: false });
  }
  firstRender = false;
}

// The skip link moves the focus without touching the route in the URL.
document.querySelector('.skip-link')?.addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});

signOut.addEventListener('click', () => {
  session.clear();
  flash = '';
  announce('Signed out.');
  render();
});
window.addEventListener('hashchange', render);
render();
