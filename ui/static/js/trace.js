// Trace page (/trace/{id}): header, then tabs for the waterfall, statistics, flame graph and raw JSON.
import {getTrace} from './api.js';
import {flameGraph} from './flame.js';
import {renderDetail} from './span-detail.js';
import {traceGraph} from './trace-graph.js';
import {buildTrace, statistics} from './trace-model.js';
import {announce, download, errorBox, fmtDuration, fmtTime, h, serviceChip, sortableTable} from './util.js';
import {Waterfall} from './waterfall.js';

const JSON_PREVIEW_LIMIT = 2_000_000;

function header(model, source) {
  const root = model.roots.length ? model.spans[model.roots[0]] : null;
  return h('header', {class: 'trace-head'},
    h('h1', {}, root ? `${root.service}: ${root.name}` : 'Empty trace',
      h('span', {class: 'trace-id mono'}, ` ${model.traceID}`)),
    h('dl', {class: 'facts inline'},
      h('dt', {}, 'Start'), h('dd', {}, model.spans.length ? fmtTime(model.start) : '-'),
      h('dt', {}, 'Duration'), h('dd', {}, fmtDuration(model.duration)),
      h('dt', {}, 'Spans'), h('dd', {class: 'span-count'}, String(model.spans.length)),
      h('dt', {}, 'Depth'), h('dd', {}, String(model.maxDepth + 1)),
      h('dt', {}, 'Errors'), h('dd', {}, String(model.errorCount)),
      source ? [h('dt', {}, 'Source'), h('dd', {}, source)] : null),
    h('p', {class: 'services'}, model.services.map((s) => serviceChip(s.name, s.count)),
    source ? null : h('a', {class: 'sql-link', href: `/sql?${new URLSearchParams({q: traceSql(model.traceID)})}`},
      'Query this trace in SQL')));
}

function traceSql(traceId) {
  // The v1 API prints a trace ID with a zero high half as 16 hex digits; the SQL view has all 32.
  const id = traceId.padStart(32, '0').replace(/[^0-9a-f]/g, '');
  return `SELECT span_id, parent_span_id, service_name, name, kind_name, start_time, duration_ms, status_name\n` +
    `FROM spans\nWHERE trace_id = '${id}'\nORDER BY start_time`;
}

function statsTable(model) {
  const cols = [
    {key: 'service', label: 'Service'}, {key: 'operation', label: 'Operation'},
    {key: 'count', label: 'Spans', num: true}, {key: 'errors', label: 'Errors', num: true},
    {key: 'total', label: 'Total time', num: true, fmt: fmtDuration},
    {key: 'self', label: 'Self time', num: true, fmt: fmtDuration},
    {key: 'avg', label: 'Avg', num: true, fmt: fmtDuration}, {key: 'min', label: 'Min', num: true, fmt: fmtDuration},
    {key: 'max', label: 'Max', num: true, fmt: fmtDuration},
  ];
  return sortableTable(cols, statistics(model), {caption: 'Time per service and operation', sortKey: 'self'});
}

function jsonView(model) {
  let text = null;
  const full = () => (text ??= JSON.stringify(model.raw, null, 2));
  const pre = h('pre', {class: 'json', tabindex: 0, 'aria-label': 'Trace JSON'});
  const t = full();
  pre.textContent = t.length > JSON_PREVIEW_LIMIT
    ? `${t.slice(0, JSON_PREVIEW_LIMIT)}\n… (${t.length - JSON_PREVIEW_LIMIT} more characters: download to see all)` : t;
  return h('div', {},
    h('div', {class: 'toolbar'}, h('button', {type: 'button', onclick: () =>
      download(`trace-${model.traceID}.json`, JSON.stringify({data: [model.raw]}, null, 2))}, 'Download JSON')),
    pre);
}

function tabs(panels) {
  const list = h('div', {role: 'tablist', 'aria-label': 'Trace views', class: 'tabs'});
  const area = h('div', {class: 'tab-area'});
  const made = new Map();
  const buttons = panels.map(([id, label], i) => h('button', {type: 'button', role: 'tab', id: `tab-${id}`,
    'aria-controls': `panel-${id}`, 'aria-selected': String(i === 0), tabindex: i === 0 ? 0 : -1,
    onclick: () => show(i)}, label));
  const show = (i) => {
    buttons.forEach((b, k) => { b.setAttribute('aria-selected', String(k === i)); b.tabIndex = k === i ? 0 : -1; });
    for (const p of made.values()) p.hidden = true;
    const [id, , make] = panels[i];
    // Panels are built on first view: the flame graph and JSON of a 100,000-span trace are not free.
    if (!made.has(id)) {
      const panel = h('div', {role: 'tabpanel', id: `panel-${id}`, 'aria-labelledby': `tab-${id}`}, make());
      made.set(id, panel);
      area.append(panel);
    }
    made.get(id).hidden = false;
  };
  list.addEventListener('keydown', (e) => {
    const cur = buttons.findIndex((b) => b.getAttribute('aria-selected') === 'true');
    const step = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
    if (!step) return;
    const next = (cur + step + buttons.length) % buttons.length;
    show(next); buttons[next].focus();
  });
  list.append(...buttons);
  show(0);
  return {el: h('div', {}, list, area), show};
}

/** Render an already-loaded Jaeger trace (used by /trace, /open and compare). Returns a cleanup.
 * `span` (a span ID, from /trace/{id}?span=...) is selected and scrolled to once the rows are drawn. */
export function renderTraceData(root, trace, {source, span} = {}) {
  const t0 = performance.now();
  const model = buildTrace(trace);
  const detail = h('aside', {class: 'span-detail', hidden: true, 'aria-labelledby': 'detail-title'});
  let waterfall = null;
  let tabSet = null;
  const showSpan = (j) => { tabSet.show(0); waterfall.reveal(j); waterfall.select(j); };
  const selectSpan = (i) => renderDetail(detail, model, i, showSpan);
  waterfall = new Waterfall(model, {onSelect: selectSpan});
  tabSet = tabs([
    ['timeline', 'Timeline', () => h('div', {class: 'timeline-layout'}, waterfall.el, detail)],
    ['graph', 'Trace graph', () => traceGraph(model, showSpan)],
    ['stats', 'Statistics', () => statsTable(model)],
    ['flame', 'Flame graph', () => flameGraph(model, showSpan)],
    ['json', 'JSON', () => jsonView(model)],
  ]);
  const page = h('div', {class: 'trace-page', dataset: {traceId: model.traceID}}, header(model, source), tabSet.el);
  root.replaceChildren(page);
  // Exposed for tests and the benchmark: the model behind the virtual rows, and when it became usable.
  window.spanlakeTrace = {model, waterfall, buildMs: performance.now() - t0};
  requestAnimationFrame(() => {
    waterfall.renderRows();
    const target = span ? model.spans.find((s) => s.spanID === span) : null;
    if (target) showSpan(target.index);
    else if (span) page.querySelector('.trace-head').append(errorBox(`Span ${span} is not in this trace.`));
    page.dataset.ready = 'true';
    announce(`Trace with ${model.spans.length} spans loaded`);
    // The frame after the rows were drawn begins once they are painted: that is the first paint.
    requestAnimationFrame(() => {
      window.spanlakeTrace.paintedAt = performance.now();
      performance.mark('spanlake:waterfall-painted');
    });
  });
  return () => waterfall.destroy();
}

export async function render(root, [traceId], query) {
  root.append(h('p', {class: 'muted'}, `Loading trace ${traceId}…`));
  const trace = await getTrace(traceId);
  document.title = `Trace ${traceId} · spanlake`;
  return renderTraceData(root, trace, {span: query ? query.get('span') : null});
}
