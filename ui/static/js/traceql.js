// The TraceQL query box: a textarea with autocomplete (scopes, intrinsics, attribute names from the Tempo
// tags endpoint, values from the tag values endpoint narrowed by the rest of the query) and syntax errors
// marked at the line and column the server names. Also: the search form's fields as TraceQL.
import {traceqlTagValues, traceqlTags} from './api.js';
import {h, parseLogfmt} from './util.js';

const SCOPES = ['span.', 'resource.', 'event.', 'link.', 'instrumentation.'];
// After `|`: the pipeline stages and metrics functions most queries start from.
const STAGES = ['select(', 'by(', 'count() > ', 'avg(duration) > ', 'rate()', 'count_over_time()',
  'quantile_over_time(duration, .99)', 'histogram_over_time(duration)', 'avg_over_time(duration)',
  'max_over_time(duration)', 'sum_over_time(', 'min_over_time(duration)', 'topk(', 'bottomk('];
const METRICS_RE = /\|\s*(rate|count_over_time|sum_over_time|avg_over_time|min_over_time|max_over_time|quantile_over_time|histogram_over_time|compare)\s*\(/;
const OPERATOR = '(?:=~|!~|!=|>=|<=|=|>|<)';
const ATTRIBUTE = '(?:(?:span|resource|event|link|instrumentation)?\\.(?:"[^"]*"|[\\w.\\-/]+)|[A-Za-z][\\w:]*)';
const VALUE_RE = new RegExp(`(${ATTRIBUTE})\\s*${OPERATOR}\\s*("?[^"\\s&|}()]*)$`);
const SCOPED_RE = /(?:^|[^\w.])(span|resource|event|link|instrumentation)\.([\w.\-/]*)$/;
const UNSCOPED_RE = /(?:^|[\s{(!&|,])\.([\w.\-/]*)$/;
const WORD_RE = /(?:^|[\s{(!&|,])([A-Za-z][\w:]*)?$/;

/** Is this TraceQL a metrics query (its pipeline ends in rate(), quantile_over_time(), ...)? */
export function isMetricsQuery(q) {
  return METRICS_RE.test(q || '');
}

/** The metrics function a query ends in, e.g. "histogram_over_time". */
export function metricsFunction(q) {
  const m = METRICS_RE.exec(q || '');
  return m ? m[1] : null;
}

function literal(value) {
  if (/^-?\d+(\.\d+)?$/.test(value) || value === 'true' || value === 'false') return value;
  return JSON.stringify(value);
}

/** The search form's fields as one TraceQL spanset filter, as Grafana's search builder writes it. */
export function formToTraceQL({service, operation, tags, minDuration, maxDuration}) {
  const parts = [];
  if (service) parts.push(`resource.service.name=${JSON.stringify(service)}`);
  if (operation) parts.push(`name=${JSON.stringify(operation)}`);
  for (const [key, value] of Object.entries(parseLogfmt(tags || ''))) {
    // Jaeger's error=true tag is the span status in OpenTelemetry.
    if (key === 'error' && value === 'true') parts.push('status=error');
    else parts.push(`span.${/^[\w.\-/]+$/.test(key) ? key : JSON.stringify(key)}=${literal(value)}`);
  }
  if (minDuration) parts.push(`duration>${minDuration.replace('µs', 'us')}`);
  if (maxDuration) parts.push(`duration<${maxDuration.replace('µs', 'us')}`);
  return `{${parts.join(' && ')}}`;
}

/** Character offset of a 1-based line and column in `text` (clamped to its end). */
export function offsetOf(text, line, col) {
  const lines = text.split('\n');
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
  return Math.min(text.length, offset + Math.max(0, col - 1));
}

/** The part of the current spanset written so far, minus the condition being typed: the `q` that narrows
 * suggested values to spans matching the rest of the query (Tempo's tag values endpoint takes it). */
function otherConditions(before, attrStart) {
  const open = before.lastIndexOf('{', attrStart);
  if (open < 0) return '{}';
  const head = before.slice(open + 1, attrStart).replace(/(&&|\|\||!|\()\s*$/, '').trim();
  return head ? `{ ${head} }` : '{}';
}

/** The suggestion context at the caret: what is being completed, from where, and how to fetch it. */
function contextAt(text, caret) {
  const before = text.slice(0, caret);
  const opens = (before.match(/[{(]/g) || []).length - (before.match(/[})]/g) || []).length;
  let m = VALUE_RE.exec(before);
  if (m && opens > 0 && !/^\d/.test(m[1])) {
    const typed = m[2];
    return {kind: 'value', tag: m[1], prefix: typed.replace(/^"/, ''), from: caret - typed.length,
      q: otherConditions(before, m.index + (m[0].length - m[0].trimStart().length))};
  }
  if ((m = SCOPED_RE.exec(before))) return {kind: 'name', scopes: [m[1]], prefix: m[2], from: caret - m[2].length};
  if ((m = UNSCOPED_RE.exec(before))) {
    return {kind: 'name', scopes: ['span', 'resource'], prefix: m[1], from: caret - m[1].length};
  }
  if ((m = WORD_RE.exec(before))) {
    const word = m[1] || '';
    const stage = /\|\s*[\w:]*$/.test(before) && opens === 0;
    if (!stage && opens <= 0) return null;
    return {kind: stage ? 'stage' : 'scope', prefix: word, from: caret - word.length};
  }
  return null;
}

/**
 * Build the query box. `onRun(q)` is called on Enter (Shift+Enter adds a line) and by the Run button.
 * Returns {el, input, value(), setValue(q), showError(err), clearError()}.
 */
export function queryEditor({value = '', onRun}) {
  const input = h('textarea', {class: 'tql-input mono', id: 'traceql', rows: 2, spellcheck: 'false',
    autocomplete: 'off', role: 'combobox', 'aria-autocomplete': 'list', 'aria-expanded': 'false',
    'aria-controls': 'tql-suggestions', 'aria-describedby': 'tql-help tql-error',
    placeholder: '{ resource.service.name = "frontend" && status = error } | rate()'});
  input.value = value;
  const mirror = h('div', {class: 'tql-mirror mono', 'aria-hidden': 'true'});
  const list = h('ul', {class: 'tql-suggestions', id: 'tql-suggestions', role: 'listbox', 'aria-label': 'Suggestions',
    hidden: true});
  const error = h('div', {class: 'tql-error', id: 'tql-error', role: 'alert'});
  const box = h('div', {class: 'tql-box'}, mirror, input, list);
  let tags = null;
  // Values per (attribute, rest of the query): typing a value's prefix asks the server once, not per key.
  const valueCache = new Map();
  let options = [];
  let active = -1;
  let context = null;
  let seq = 0;

  const loadTags = async () => {
    if (!tags) tags = traceqlTags().catch(() => ({}));
    return tags;
  };

  const close = () => {
    list.hidden = true;
    list.replaceChildren();
    options = [];
    active = -1;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  };

  const highlight = (i) => {
    active = i;
    list.querySelectorAll('[role=option]').forEach((el, j) => el.setAttribute('aria-selected', String(j === i)));
    if (i >= 0) {
      input.setAttribute('aria-activedescendant', `tql-opt-${i}`);
      list.children[i].scrollIntoView({block: 'nearest'});
    }
  };

  const accept = (i) => {
    const option = options[i];
    if (!option || !context) return;
    const text = input.value;
    const caret = input.selectionStart;
    input.value = text.slice(0, context.from) + option.insert + text.slice(caret);
    const at = context.from + option.insert.length;
    input.setSelectionRange(at, at);
    input.focus();
    clearError();
    suggest();
  };

  const show = (items) => {
    options = items.slice(0, 50);
    if (!options.length) { close(); return; }
    list.replaceChildren(...options.map((o, i) => h('li', {role: 'option', id: `tql-opt-${i}`, 'aria-selected': 'false',
      // mousedown, not click: the textarea keeps focus and its caret.
      onmousedown: (e) => { e.preventDefault(); accept(i); }},
    h('span', {class: 'tql-opt-label'}, o.label), o.detail ? h('span', {class: 'muted'}, o.detail) : null)));
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    highlight(0);
  };

  const matches = (label, prefix) => label.toLowerCase().startsWith(prefix.toLowerCase());

  async function suggest() {
    const mine = ++seq;
    context = contextAt(input.value, input.selectionStart);
    if (!context || input.selectionStart !== input.selectionEnd) { close(); return; }
    const {kind, prefix} = context;
    let items = [];
    if (kind === 'scope') {
      const intrinsic = (await loadTags()).intrinsic || [];
      items = [...SCOPES.map((s) => ({label: s, insert: s, detail: 'scope'})),
        {label: '.', insert: '.', detail: 'span or resource'},
        ...intrinsic.map((t) => ({label: t, insert: t, detail: 'intrinsic'}))];
    } else if (kind === 'stage') {
      items = STAGES.map((s) => ({label: s, insert: s}));
    } else if (kind === 'name') {
      const all = await loadTags();
      const names = [...new Set(context.scopes.flatMap((s) => all[s] || []))].sort();
      items = names.map((n) => ({label: n, insert: /^[\w.\-/]+$/.test(n) ? n : JSON.stringify(n),
        detail: context.scopes.length === 1 ? context.scopes[0] : ''}));
    } else {
      const key = `${context.tag}\n${context.q}`;
      if (!valueCache.has(key)) {
        // The rest of the query may not parse yet: then offer the attribute's values unfiltered.
        valueCache.set(key, traceqlTagValues(context.tag, context.q)
          .catch(() => traceqlTagValues(context.tag)).catch(() => []));
      }
      const values = await valueCache.get(key);
      items = values.map((v) => ({label: String(v.value),
        insert: v.type === 'string' ? JSON.stringify(String(v.value)) : String(v.value), detail: v.type}));
    }
    if (mine !== seq) return;
    show(items.filter((o) => matches(o.label, prefix) && o.insert !== prefix));
  }

  function clearError() {
    error.replaceChildren();
    mirror.replaceChildren();
    box.classList.remove('invalid');
    input.removeAttribute('aria-invalid');
  }

  function showError(err) {
    clearError();
    error.append(h('span', {}, err.message));
    if (!err.position) return;
    const text = input.value;
    const at = offsetOf(text, err.position.line, err.position.col);
    // The mirror holds the same text, transparent, behind the textarea: the marked character shows through.
    mirror.append(text.slice(0, at), h('mark', {class: 'tql-error-mark'}, text.slice(at, at + 1) || ' '),
      text.slice(at + 1));
    mirror.scrollTop = input.scrollTop;
    box.classList.add('invalid');
    input.setAttribute('aria-invalid', 'true');
  }

  input.addEventListener('input', () => { clearError(); suggest(); });
  input.addEventListener('click', suggest);
  input.addEventListener('focus', suggest);
  input.addEventListener('blur', close);
  input.addEventListener('scroll', () => { mirror.scrollTop = input.scrollTop; });
  input.addEventListener('keydown', (e) => {
    if (!list.hidden && options.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const step = e.key === 'ArrowDown' ? 1 : -1;
        highlight((active + step + options.length) % options.length);
        return;
      }
      if ((e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.metaKey) || e.key === 'Tab') {
        e.preventDefault();
        accept(active < 0 ? 0 : active);
        return;
      }
      if (e.key === 'Escape') { e.preventDefault(); close(); return; }
    }
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      close();
      onRun(input.value.trim());
    }
  });
  const help = h('small', {id: 'tql-help', class: 'muted'},
    'Enter runs the query, Shift+Enter adds a line; ↑/↓ and Tab pick a suggestion. ',
    'A query ending in rate(), quantile_over_time() or histogram_over_time() draws a chart.');
  const run = h('button', {type: 'button', class: 'primary', onclick: () => onRun(input.value.trim())}, 'Run query');
  const el = h('div', {class: 'tql-editor'},
    h('label', {for: 'traceql', class: 'tql-label'}, 'TraceQL'), h('div', {class: 'tql-row'}, box, run), error, help);
  return {el, input, value: () => input.value.trim(), showError, clearError,
    setValue: (q) => { input.value = q; clearError(); }};
}
