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

// A fixed palette with good contrast on white.
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf',
  '#bcbd22', '#7f7f7f', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173', '#3182bd', '#e6550d'];

const assigned = new Map();

/** A colour per service, handed out in order of first use: within a page load a service keeps its
 * colour across views, and the first 16 services never share one (hashing names collides too often). */
export function serviceColor(name) {
  let color = assigned.get(name);
  if (!color) {
    color = PALETTE[assigned.size % PALETTE.length];
    assigned.set(name, color);
  }
  return color;
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
