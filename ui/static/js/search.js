// Search page: the form state lives in the URL (/search?service=... or /search?q=<TraceQL>), so results
// can be shared and the back button restores the previous search.
import {getOperations, getServices, searchTraces, traceqlMetrics, traceqlSearch} from './api.js';
import {formToTraceQL, isMetricsQuery, queryEditor} from './traceql.js';
import {renderMetrics, renderSpanSets} from './traceql-results.js';
import {summarize} from './trace-model.js';
import {announce, errorBox, fmtDuration, h, loadPlotly, navigate, parseLogfmt, refreshTimes, relativeTime,
  serviceChip, serviceColor, themedLayout} from './util.js';

const LOOKBACKS = [['15m', 'Last 15 minutes', 15 * 60], ['1h', 'Last hour', 3600], ['6h', 'Last 6 hours', 6 * 3600],
  ['24h', 'Last 24 hours', 86400], ['2d', 'Last 2 days', 2 * 86400], ['7d', 'Last 7 days', 7 * 86400],
  ['custom', 'Custom range', 0]];
const SORTS = {
  recent: ['Most recent', (a, b) => b.start - a.start],
  slowest: ['Slowest', (a, b) => b.duration - a.duration],
  spans: ['Most spans', (a, b) => b.spanCount - a.spanCount],
  errors: ['Most errors', (a, b) => b.errorCount - a.errorCount || b.start - a.start],
};
const FIELDS = ['service', 'operation', 'tags', 'lookback', 'start', 'end', 'minDuration', 'maxDuration', 'limit', 'sort',
  'q', 'spss'];

/** Time window in µs since epoch from the URL state (`start`/`end` are µs too, for links from charts). */
function timeWindow(state) {
  const now = Date.now() * 1000;
  if (state.lookback === 'custom' || (!state.lookback && state.start)) {
    return {start: Number(state.start) || now - 3600e6, end: Number(state.end) || now};
  }
  const lb = LOOKBACKS.find(([k]) => k === (state.lookback || '1h')) || LOOKBACKS[1];
  return {start: now - lb[2] * 1e6, end: now};
}

function toLocalInput(us) {
  const d = new Date(us / 1000 - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function labelled(label, control) {
  return h('label', {class: 'field'}, h('span', {}, label), control);
}

/** The form's time range and limit as URL parameters (a TraceQL query uses them too). */
function rangeParams(form) {
  const f = form.elements;
  const next = new URLSearchParams();
  if (f.lookback.value) next.set('lookback', f.lookback.value);
  if (f.lookback.value === 'custom') {
    next.set('start', String(new Date(f.startLocal.value).getTime() * 1000));
    next.set('end', String(new Date(f.endLocal.value).getTime() * 1000));
  }
  if (f.limit.value.trim()) next.set('limit', f.limit.value.trim());
  return next;
}

/** The form's fields as TraceQL, kept current, with a button that puts it into the query box. */
function traceqlOfForm(form, onUse) {
  const code = h('code', {class: 'tql-from-form mono'});
  const update = () => {
    const f = form.elements;
    code.textContent = formToTraceQL({service: f.service.value, operation: f.operation.value, tags: f.tags.value.trim(),
      minDuration: f.minDuration.value.trim(), maxDuration: f.maxDuration.value.trim()});
  };
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  update();
  return {update, el: h('div', {class: 'tql-equivalent'}, h('span', {class: 'field-label'}, 'As TraceQL'), code,
    h('button', {type: 'button', onclick: () => onUse(code.textContent)}, 'Use in query box'))};
}

function buildForm(state, services) {
  const service = h('select', {name: 'service'}, h('option', {value: ''}, 'All services'),
    services.map((s) => h('option', {value: s, selected: s === state.service}, s)));
  const operation = h('select', {name: 'operation'}, h('option', {value: ''}, 'All operations'));
  const fillOps = async () => {
    operation.replaceChildren(h('option', {value: ''}, 'All operations'));
    if (!service.value) return;
    try {
      const ops = await getOperations(service.value);
      operation.append(...ops.map((o) => h('option', {value: o, selected: o === state.operation}, o)));
      operation.dispatchEvent(new Event('change', {bubbles: true}));
    } catch { /* operations are a convenience; searching still works without them */ }
  };
  service.addEventListener('change', fillOps);
  fillOps();
  const lookback = h('select', {name: 'lookback'},
    LOOKBACKS.map(([k, label]) => h('option', {value: k, selected: k === (state.lookback || '1h')}, label)));
  const win = timeWindow(state);
  const custom = h('div', {class: 'custom-range', hidden: lookback.value !== 'custom'},
    labelled('From', h('input', {type: 'datetime-local', name: 'startLocal', value: toLocalInput(win.start)})),
    labelled('To', h('input', {type: 'datetime-local', name: 'endLocal', value: toLocalInput(win.end)})));
  lookback.addEventListener('change', () => { custom.hidden = lookback.value !== 'custom'; });
  const form = h('form', {class: 'search-form', 'aria-label': 'Search traces'},
    labelled('Service', service), labelled('Operation', operation),
    labelled('Tags', h('input', {name: 'tags', value: state.tags || '', placeholder: 'http.status_code=500 error=true',
      'aria-describedby': 'tags-help'})),
    h('small', {id: 'tags-help', class: 'muted'}, 'key=value pairs separated by spaces; all must match one span'),
    labelled('Lookback', lookback), custom,
    h('div', {class: 'row2'},
      labelled('Min duration', h('input', {name: 'minDuration', value: state.minDuration || '', placeholder: '100ms'})),
      labelled('Max duration', h('input', {name: 'maxDuration', value: state.maxDuration || '', placeholder: '2s'}))),
    labelled('Limit', h('input', {name: 'limit', type: 'number', min: 1, max: 1500, value: state.limit || 20})),
    h('button', {type: 'submit', class: 'primary'}, 'Find traces'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = form.elements;
    const next = rangeParams(form);
    for (const name of ['service', 'operation', 'tags', 'minDuration', 'maxDuration']) {
      if (f[name].value.trim()) next.set(name, f[name].value.trim());
    }
    if (state.sort) next.set('sort', state.sort);
    next.set('run', '1');
    navigate(`/search?${next}`);
  });
  return form;
}

async function drawScatter(el, summaries) {
  const Plotly = await loadPlotly();
  const byService = new Map();
  for (const s of summaries) {
    if (!byService.has(s.rootService)) byService.set(s.rootService, []);
    byService.get(s.rootService).push(s);
  }
  const traces = [...byService.entries()].map(([svc, list]) => ({
    type: 'scatter', mode: 'markers', name: svc || '(no service)',
    x: list.map((s) => new Date(s.start / 1000)), y: list.map((s) => s.duration / 1000),
    customdata: list.map((s) => s.traceID), text: list.map((s) => `${s.rootService}: ${s.rootName}`),
    marker: {color: serviceColor(svc), size: list.map((s) => Math.min(20, 6 + Math.sqrt(s.spanCount))),
      line: {width: list.map((s) => (s.errorCount ? 2 : 0)), color: '#d62728'}},
    hovertemplate: '%{text}<br>%{y:.2f} ms<extra></extra>',
  }));
  await Plotly.newPlot(el, traces, themedLayout({
    margin: {l: 60, r: 10, t: 10, b: 40}, height: 220, yaxis: {title: {text: 'duration (ms)'}},
    showlegend: true, legend: {orientation: 'h', y: -0.25},
  }), {displaylogo: false, responsive: true});
  el.on('plotly_click', (ev) => { if (ev.points.length) navigate(`/trace/${ev.points[0].customdata}`); });
}

function resultRow(s, selected, onToggle) {
  return h('li', {class: 'result'},
    h('div', {class: 'result-head'},
      h('input', {type: 'checkbox', 'aria-label': `Select ${s.traceID} for comparison`, checked: selected.has(s.traceID),
        onchange: (e) => onToggle(s.traceID, e.target.checked)}),
      h('a', {href: `/trace/${s.traceID}`, class: 'result-title'}, `${s.rootService}: ${s.rootName}`),
      h('span', {class: 'trace-id mono'}, s.traceID),
      h('span', {class: 'duration'}, fmtDuration(s.duration))),
    h('div', {class: 'result-meta'},
      h('span', {}, `${s.spanCount} spans`),
      s.errorCount ? h('span', {class: 'badge error-badge'}, `${s.errorCount} errors`) : null,
      h('span', {class: 'muted'}, relativeTime(s.start)),
      h('span', {class: 'services'}, s.services.map((x) => serviceChip(x.name, x.count)))));
}

function renderResults(el, summaries, state) {
  const sortKey = SORTS[state.sort] ? state.sort : 'recent';
  const sorted = [...summaries].sort(SORTS[sortKey][1]);
  const selected = new Set();
  const compare = h('button', {type: 'button', disabled: true, onclick: () => {
    const [a, b] = [...selected];
    navigate(`/compare/${a}/${b}`);
  }}, 'Compare selected');
  const onToggle = (id, on) => {
    if (on) selected.add(id); else selected.delete(id);
    compare.disabled = selected.size !== 2;
  };
  const sort = h('select', {'aria-label': 'Sort results'},
    Object.entries(SORTS).map(([k, [label]]) => h('option', {value: k, selected: k === sortKey}, label)));
  sort.addEventListener('change', () => {
    const next = new URLSearchParams(location.search);
    next.set('sort', sort.value);
    // Sorting does not re-run the search: replace the URL so back still goes to the previous search.
    history.replaceState(null, '', `/search?${next}`);
    renderResults(el, summaries, {...state, sort: sort.value});
  });
  const plot = h('div', {class: 'scatter', 'aria-label': 'Trace durations over time (click a point to open it)',
    role: 'img'});
  el.replaceChildren(
    h('div', {class: 'results-bar'}, h('h2', {}, `${summaries.length} traces`), labelled('Sort', sort), compare),
    plot,
    h('ol', {class: 'results', 'aria-label': 'Traces'}, sorted.map((s) => resultRow(s, selected, onToggle))));
  if (summaries.length) drawScatter(plot, summaries).catch((err) => plot.replaceWith(errorBox(err.message)));
  announce(`${summaries.length} traces found`);
}

export async function render(root, _params, query) {
  const state = Object.fromEntries(FIELDS.map((f) => [f, query.get(f) || '']));
  const results = h('section', {class: 'results-pane', 'aria-label': 'Search results'});
  const side = h('aside', {class: 'search-side'}, h('h1', {}, 'Search'));
  let form = null;
  const editor = queryEditor({value: state.q, onRun: (q) => {
    if (!q) return;
    const next = rangeParams(form);
    next.set('q', q);
    if (state.spss) next.set('spss', state.spss);
    next.set('run', '1');
    navigate(`/search?${next}`);
  }});
  const pane = h('div', {class: 'search-main'}, editor.el, results);
  root.replaceChildren(h('div', {class: 'search-page'}, side, pane));
  let services = [];
  try { services = await getServices(); } catch (err) { side.append(errorBox(`Services: ${err.message}`)); }
  form = buildForm(state, services);
  const equivalent = traceqlOfForm(form, (q) => { editor.setValue(q); editor.input.focus(); });
  side.append(form, equivalent.el);
  if (!query.get('run') && !state.service && !state.tags && !state.operation && !state.q) {
    results.append(h('p', {class: 'muted'},
      'Choose a service (or none, for all services) and press Find traces, or write a TraceQL query.'));
    return undefined;
  }
  // "3 min ago" goes stale while the page stays open: refresh the relative times twice a minute.
  const timer = setInterval(() => refreshTimes(results), 30_000);
  if (state.q) await runTraceQL(results, state, editor);
  else await runSearch(results, state);
  return () => clearInterval(timer);
}

/** Run the TraceQL query of the URL: spansets, or a chart for a metrics query; errors marked in the box. */
async function runTraceQL(results, state, editor) {
  const win = timeWindow(state);
  const range = {start: Math.floor(win.start / 1e6), end: Math.ceil(win.end / 1e6)};
  results.append(h('p', {class: 'muted'}, 'Searching…'));
  try {
    if (isMetricsQuery(state.q)) {
      await renderMetrics(results, await traceqlMetrics(state.q, range), state.q);
    } else {
      renderSpanSets(results, await traceqlSearch(state.q, {...range, limit: state.limit || 20, spss: state.spss}));
    }
  } catch (err) {
    // A syntax error is shown at its position in the query box; other failures here.
    if (err.position) {
      editor.showError(err);
      results.replaceChildren();
    } else {
      results.replaceChildren(errorBox(`Query failed: ${err.message}`));
    }
  }
}

async function runSearch(results, state) {
  const win = timeWindow(state);
  const tags = parseLogfmt(state.tags);
  results.append(h('p', {class: 'muted'}, 'Searching…'));
  try {
    const traces = await searchTraces({
      service: state.service, operation: state.operation,
      tags: Object.keys(tags).length ? JSON.stringify(tags) : '',
      start: Math.floor(win.start), end: Math.ceil(win.end),
      minDuration: state.minDuration, maxDuration: state.maxDuration, limit: state.limit || 20,
    });
    renderResults(results, traces.map(summarize), state);
  } catch (err) {
    results.replaceChildren(errorBox(`Search failed: ${err.message}`));
  }
}
