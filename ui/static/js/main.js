// The app shell: a tiny client-side router. Every view lives in its own module and is loaded on demand.
import {setupThemeToggle} from './theme.js';
import {errorBox, h} from './util.js';

const ROUTES = [
  [/^\/(search)?$/, 'search', () => import('./search.js')],
  [/^\/trace\/([^/]+)$/, 'search', () => import('./trace.js')],
  [/^\/compare\/([^/]+)\/([^/]+)$/, 'search', () => import('./compare.js')],
  [/^\/map$/, 'map', () => import('./map.js')],
  [/^\/sql$/, 'sql', () => import('./sql.js')],
  [/^\/open$/, 'open', () => import('./open.js')],
];

const main = document.getElementById('main');
let cleanup = null;
let renderSeq = 0;

async function render() {
  const seq = ++renderSeq;
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const params = new URLSearchParams(location.search);
  if (cleanup) { try { cleanup(); } catch { /* a view failing to clean up must not block the next */ } }
  cleanup = null;
  const match = ROUTES.map(([re, section, load]) => [path.match(re), section, load]).find(([m]) => m);
  for (const a of document.querySelectorAll('nav a[data-section]')) {
    if (match && a.dataset.section === match[1]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!match) {
    document.title = 'Page not found · spanlake';
    main.replaceChildren(notFound(path));
    return;
  }
  const [m, , load] = match;
  try {
    const view = await load();
    if (seq !== renderSeq) return;
    main.replaceChildren();
    const result = await view.render(main, m.slice(1).map(decodeURIComponent), params);
    if (seq === renderSeq && typeof result === 'function') cleanup = result;
  } catch (err) {
    if (seq === renderSeq) main.replaceChildren(errorBox(String(err && err.message ? err.message : err)));
  }
}

/** The app's own not-found page (the server answers unknown UI paths with 404 and this app). */
function notFound(path) {
  return h('section', {class: 'not-found', 'aria-labelledby': 'not-found-title'},
    h('h1', {id: 'not-found-title'}, 'Page not found'),
    h('p', {}, 'There is no page at ', h('code', {}, path), '.'),
    h('ul', {}, h('li', {}, h('a', {href: '/search'}, 'Search traces')),
      h('li', {}, h('a', {href: '/map'}, 'Service map')), h('li', {}, h('a', {href: '/sql'}, 'SQL console'))));
}

function go(url) {
  // The same URL again (e.g. Find traces pressed twice) re-renders without a duplicate history entry.
  if (url !== location.pathname + location.search) history.pushState(null, '', url);
  render();
}

window.addEventListener('spanlake:navigate', (e) => go(e.detail));
window.addEventListener('popstate', render);

// Same-origin links navigate inside the app, so the back button and shared URLs both work.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download') || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/static/')) return;
  e.preventDefault();
  go(url.pathname + url.search);
});

document.getElementById('goto-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const ids = e.target.elements.id.value.trim().split(/[\s,]+/).filter(Boolean);
  if (ids.length === 1) go(`/trace/${encodeURIComponent(ids[0])}`);
  else if (ids.length >= 2) go(`/compare/${encodeURIComponent(ids[0])}/${encodeURIComponent(ids[1])}`);
});

setupThemeToggle(document.getElementById('theme-toggle'));
main.append(h('p', {class: 'muted'}, 'Loading…'));
render();
