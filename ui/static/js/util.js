// Small DOM and formatting helpers shared by every view.

/** Create an element: h('div', {class: 'x', onclick: fn}, child, 'text', ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  appendAll(el, children);
  return el;
}

function appendAll(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendAll(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Format a duration given in microseconds. */
export function fmtDuration(us) {
  if (us === null || us === undefined || Number.isNaN(us)) return '';
  const abs = Math.abs(us);
  if (abs < 1) return `${(us * 1000).toFixed(0)}ns`;
  if (abs < 1000) return `${trim(us)}µs`;
  if (abs < 1e6) return `${trim(us / 1000)}ms`;
  if (abs < 60e6) return `${trim(us / 1e6)}s`;
  return `${trim(us / 60e6)}min`;
}

function trim(n) {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1).replace(/\.0$/, '') : n.toFixed(2).replace(/\.?0+$/, '');
}

/** Format an epoch time given in microseconds as local date and time. */
export function fmtTime(us) {
  const d = new Date(us / 1000);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// A fixed palette that reads on both the light and the dark theme.
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf',
  '#bcbd22', '#7f7f7f', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173', '#3182bd', '#e6550d'];

/** FNV-1a over the UTF-16 code units: cheap, stable across pages, reloads and browsers. */
function hashName(name) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The one colour of a service, everywhere: keyed by the service name alone, never by the order in
 * which a page happens to meet its services (that made frontend orange on one page, blue on the next). */
export function serviceColor(name) {
  return PALETTE[hashName(String(name || '')) % PALETTE.length];
}

/** A service's name with its colour (and span count), as every page shows it. */
export function serviceChip(name, count) {
  return h('span', {class: 'svc-chip', style: `border-color:${serviceColor(name)}`, dataset: {service: name}},
    count === undefined ? name : `${name} (${count})`);
}

const RELATIVE_UNITS = [['year', 365 * 86400], ['month', 30 * 86400], ['day', 86400], ['hour', 3600],
  ['min', 60], ['s', 1]];

/** "3 min ago" (or "in 2 min" for clock skew) for an epoch time in µs, relative to `nowMs`. */
export function fmtRelative(us, nowMs = Date.now()) {
  const seconds = Math.round((nowMs - us / 1000) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 5) return 'just now';
  for (const [unit, size] of RELATIVE_UNITS) {
    if (abs >= size) {
      const n = Math.floor(abs / size);
      const label = unit === 'min' || unit === 's' ? unit : `${unit}${n === 1 ? '' : 's'}`;
      return seconds >= 0 ? `${n} ${label} ago` : `in ${n} ${label}`;
    }
  }
  return 'just now';
}

/** A <time> showing the relative time, the absolute local time on hover; kept fresh by refreshTimes. */
export function relativeTime(us) {
  return h('time', {class: 'rel-time', datetime: new Date(us / 1000).toISOString(), title: fmtTime(us),
    dataset: {us: String(us)}}, fmtRelative(us));
}

/** Re-render every relative time under `root` (called on a timer by the pages that show them). */
export function refreshTimes(root) {
  const now = Date.now();
  for (const el of root.querySelectorAll('time.rel-time')) el.textContent = fmtRelative(Number(el.dataset.us), now);
}

/** Colours of the current theme, for what CSS cannot reach (plotly charts, canvases). */
export function themeColors() {
  const css = getComputedStyle(document.documentElement);
  const get = (name) => css.getPropertyValue(name).trim();
  return {fg: get('--fg'), muted: get('--muted'), bg: get('--bg'), panel: get('--panel'), line: get('--line'),
    grid: get('--grid'), critical: get('--critical'), error: get('--error')};
}

/** The plotly layout parts that follow the theme: transparent backgrounds, theme text and grid. */
export function plotlyTheme() {
  const c = themeColors();
  const axis = {gridcolor: c.grid, zerolinecolor: c.line, linecolor: c.line, color: c.fg};
  return {paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: 'rgba(0,0,0,0)', font: {color: c.fg},
    xaxis: axis, yaxis: axis};
}

/** Merge the theme into a plotly layout (axis settings given by the caller win). */
export function themedLayout(layout) {
  const t = plotlyTheme();
  return {...t, ...layout, xaxis: {...t.xaxis, ...(layout.xaxis || {})}, yaxis: {...t.yaxis, ...(layout.yaxis || {})}};
}

let plotlyPromise = null;

/** Load the vendored plotly.js once, on first use (it is large and most pages do not need it). */
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyPromise) {
    plotlyPromise = new Promise((resolve, reject) => {
      const script = h('script', {src: '/static/vendor/plotly.min.js'});
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { plotlyPromise = null; reject(new Error('could not load plotly.js')); };
      document.head.append(script);
    });
  }
  return plotlyPromise;
}

/** Navigate inside the single-page app (pushes history; main.js renders the view). */
export function navigate(url) {
  window.dispatchEvent(new CustomEvent('spanlake:navigate', {detail: url}));
}

/** Announce a message to screen readers. */
export function announce(message) {
  const el = document.getElementById('status');
  if (el) el.textContent = message;
}

export function errorBox(message) {
  return h('div', {class: 'error', role: 'alert'}, message);
}

/** Offer a string as a file download. */
export function download(filename, text, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], {type}));
  const a = h('a', {href: url, download: filename});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Parse logfmt `a=b c="d e"` into a map of strings (what Jaeger's `tags` parameter expects). */
export function parseLogfmt(text) {
  const out = {};
  const re = /([^\s=]+)=("((?:[^"\\]|\\.)*)"|\S*)/g;
  let m;
  while ((m = re.exec(text || '')) !== null) {
    out[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2];
  }
  return out;
}

/** A sortable table: columns = [{key, label, fmt?, num?}], rows = objects. */
export function sortableTable(columns, rows, {caption, sortKey, desc = true, rowClass} = {}) {
  let key = sortKey || columns[0].key;
  let descending = desc;
  const table = h('table', {class: 'data'});
  const render = () => {
    const sorted = [...rows].sort((a, b) => {
      const x = a[key]; const y = b[key];
      const cmp = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      return descending ? -cmp : cmp;
    });
    const head = h('tr', {}, columns.map((c) => {
      const sortState = c.key === key ? (descending ? 'descending' : 'ascending') : 'none';
      return h('th', {scope: 'col', 'aria-sort': sortState},
        h('button', {type: 'button', class: 'th-sort', onclick: () => {
          if (key === c.key) descending = !descending; else { key = c.key; descending = !!c.num; }
          render();
        }}, c.label));
    }));
    const body = sorted.map((r) => h('tr', {class: rowClass ? rowClass(r) : undefined},
      columns.map((c) => h('td', {class: c.num ? 'num' : undefined}, c.fmt ? c.fmt(r[c.key], r) : r[c.key]))));
    table.replaceChildren(...(caption ? [h('caption', {}, caption)] : []), h('thead', {}, head),
      h('tbody', {}, body));
  };
  render();
  return table;
}
