// Service map (/map): the dependency graph for a time range, and RED charts for the chosen service.
// The graph comes from /api/dependencies, error rates per edge from SQL, RED series from /api/metrics.
import {getDependencies, getMetrics, runSql} from './api.js';
import {errorBox, h, loadPlotly, navigate, serviceColor, themedLayout} from './util.js';

const LOOKBACKS = [['1h', 3600], ['6h', 6 * 3600], ['24h', 86400], ['2d', 2 * 86400], ['7d', 7 * 86400]];
const SVG = 'http://www.w3.org/2000/svg';
const COLUMN = 340; // px between dependency levels: room for an edge label between two nodes

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

/** Columns by depth from the callers-only services, so calls flow left to right. */
function layout(links) {
  const nodes = [...new Set(links.flatMap((l) => [l.parent, l.child]))].sort();
  const incoming = new Map(nodes.map((n) => [n, 0]));
  for (const l of links) if (l.parent !== l.child) incoming.set(l.child, incoming.get(l.child) + 1);
  const depth = new Map();
  let frontier = nodes.filter((n) => incoming.get(n) === 0);
  if (!frontier.length && nodes.length) frontier = [nodes[0]];
  let d = 0;
  while (frontier.length) {
    for (const n of frontier) depth.set(n, d);
    frontier = [...new Set(links.filter((l) => frontier.includes(l.parent) && !depth.has(l.child)).map((l) => l.child))];
    d++;
    if (!frontier.length) {
      const rest = nodes.filter((n) => !depth.has(n));
      if (rest.length) frontier = [rest[0]];
    }
  }
  const columns = new Map();
  for (const n of nodes) {
    const c = depth.get(n);
    if (!columns.has(c)) columns.set(c, []);
    columns.get(c).push(n);
  }
  const pos = new Map();
  const maxRows = Math.max(1, ...[...columns.values()].map((c) => c.length));
  for (const [c, list] of columns) list.forEach((n, i) => pos.set(n, {x: 90 + c * COLUMN, y: 50 + (i + (maxRows - list.length) / 2) * 90}));
  return {nodes, pos, width: 180 + Math.max(0, ...columns.keys()) * COLUMN, height: 40 + maxRows * 90};
}

function drawGraph(links, errors, onService) {
  const {nodes, pos, width, height} = layout(links);
  const edges = links.map((l) => {
    const a = pos.get(l.parent); const b = pos.get(l.child);
    const err = errors.get(`${l.parent}\u0000${l.child}`);
    const rate = err && err.calls ? err.errors / err.calls : 0;
    const self = l.parent === l.child;
    const d = self ? `M${a.x + 60},${a.y - 10} c60,-50 60,50 0,20`
      : `M${a.x + 60},${a.y} C${(a.x + b.x) / 2},${a.y} ${(a.x + b.x) / 2},${b.y} ${b.x - 64},${b.y}`;
    const label = `${l.callCount} calls${err ? ` · ${(rate * 100).toFixed(1)}% err` : ''}`;
    return svg('g', {class: `edge${rate > 0 ? ' edge-error' : ''}`, 'data-parent': l.parent, 'data-child': l.child},
      svg('title', {}, `${l.parent} → ${l.child}: ${label}`),
      svg('path', {d, 'marker-end': 'url(#arrow)', 'stroke-width': Math.min(6, 1 + Math.log10(1 + l.callCount))}),
      svg('text', {x: self ? a.x + 70 : (a.x + b.x) / 2, y: self ? a.y - 30 : (a.y + b.y) / 2 - 6,
        'text-anchor': 'middle', class: 'edge-label'}, label));
  });
  const nodeEls = nodes.map((n) => {
    const p = pos.get(n);
    const g = svg('g', {class: 'node', tabindex: 0, role: 'button', 'aria-label': `Service ${n}: show RED charts`,
      'data-service': n, transform: `translate(${p.x},${p.y})`},
    svg('rect', {x: -60, y: -18, width: 120, height: 36, rx: 8, fill: serviceColor(n), class: 'node-box'}),
    svg('text', {'text-anchor': 'middle', y: 5}, n.length > 16 ? `${n.slice(0, 15)}…` : n));
    g.addEventListener('click', () => onService(n));
    g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onService(n); } });
    return g;
  });
  return svg('svg', {class: 'service-graph', viewBox: `0 0 ${width} ${height}`, width, height, role: 'group',
    'aria-label': `Service dependency graph: ${nodes.length} services, ${links.length} edges`},
  svg('defs', {}, svg('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: 'auto-start-reverse'}, svg('path', {d: 'M0,0 L10,5 L0,10 z'}))), ...edges, ...nodeEls);
}

async function edgeErrors(startUs) {
  const res = await runSql(`SELECT p.service_name AS parent, c.service_name AS child, count(*) AS calls,
    count(*) FILTER (WHERE CAST(c.status_code AS VARCHAR) IN ('2', 'ERROR', 'STATUS_CODE_ERROR')) AS errors
    FROM spans c JOIN spans p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
    WHERE c.start_time >= make_timestamp(${Math.floor(startUs)}) GROUP BY ALL`);
  return new Map(res.rows.map((r) => [`${r[0]}\u0000${r[1]}`, {calls: Number(r[2]), errors: Number(r[3])}]));
}

/** One series of a proto-JSON MetricFamily from /api/metrics: [{t: Date, v: number}]. */
function series(family) {
  const metric = (family && family.metrics && family.metrics[0]) || {metricPoints: []};
  return metric.metricPoints.map((p) => ({t: new Date(p.timestamp), v: Number(p.gaugeValue.doubleValue)}));
}

// RED from Jaeger's SPM endpoints (/api/metrics/...), which spanlake computes from stored spans:
// calls of the service's server and consumer spans, the fraction in error, and latency quantiles.
async function redCharts(el, service, lookbackS) {
  const endMs = Date.now();
  const stepMs = Math.max(60_000, Math.round((lookbackS * 1000) / 60));
  const base = new URLSearchParams({service, endTs: String(endMs), lookback: String(lookbackS * 1000),
    step: String(stepMs), ratePer: String(stepMs)});
  base.append('spanKind', 'server');
  base.append('spanKind', 'consumer');
  const get = (metric, extra = {}) => getMetrics(metric, new URLSearchParams([...base, ...Object.entries(extra)]));
  el.replaceChildren(h('h2', {}, `RED: ${service}`), h('p', {class: 'muted'}, 'Loading…'));
  let calls; let errors; let quantiles;
  try {
    [calls, errors, ...quantiles] = await Promise.all([get('calls'), get('errors'),
      ...[0.5, 0.95, 0.99].map((q) => get('latencies', {quantile: String(q)}))]);
  } catch (err) {
    el.replaceChildren(h('h2', {}, `RED: ${service}`), errorBox(err.message));
    return;
  }
  const Plotly = await loadPlotly();
  const searchUrl = (fromMs, toMs, extra) => `/search?${new URLSearchParams({service, lookback: 'custom',
    start: String(fromMs * 1000), end: String(toMs * 1000), run: '1', ...extra})}`;
  const plots = [];
  const chart = (title, data, extra) => {
    const div = h('div', {class: 'red-chart', role: 'img', 'aria-label': `${title} for ${service}; click a point for traces`});
    plots.push([div, data, extra]);
    return h('figure', {}, h('figcaption', {}, title, ' ',
      h('a', {href: searchUrl(endMs - lookbackS * 1000, endMs, extra)}, 'traces')), div);
  };
  // Plotted after the figures are in the page, so plotly sizes each chart to its grid cell. The x axis
  // spans the whole time range plus a little room at both ends, so a point at the first or last step
  // (or a single point) is drawn whole instead of half cut off at the edge; RED values are never negative,
  // so y starts at 0, and an all-zero series gets 0..1 instead of plotly's -1..1.
  const padMs = Math.max(stepMs / 2, lookbackS * 1000 * 0.03);
  const yAxis = (data) => {
    const max = Math.max(0, ...data.flatMap((d) => d.y.filter(Number.isFinite)));
    return max > 0 ? {rangemode: 'tozero'} : {range: [0, 1], rangemode: 'tozero'};
  };
  const plot = ([div, data, extra]) => Plotly.newPlot(div, data, themedLayout({
    margin: {l: 50, r: 14, t: 24, b: 30}, height: 190,
    showlegend: data.length > 1, legend: {orientation: 'h', x: 0, y: 1, yanchor: 'bottom'},
    xaxis: {type: 'date', range: [new Date(endMs - lookbackS * 1000 - padMs), new Date(endMs + padMs)]},
    yaxis: yAxis(data)}),
  {displaylogo: false, responsive: true}).then(() => div.on('plotly_click', (ev) => {
    if (!ev.points.length) return;
    // Each point aggregates the step that ends at it: open the traces of that window.
    const at = new Date(ev.points[0].x).getTime();
    navigate(searchUrl(at - stepMs, at, extra));
  }));
  const line = (points, extra = {}) => ({x: points.map((p) => p.t), y: points.map((p) => p.v), type: 'scatter',
    mode: 'lines+markers', cliponaxis: false, ...extra});
  const callPoints = series(calls).map((p) => ({t: p.t, v: p.v * 60}));
  const errorPoints = series(errors).map((p) => ({t: p.t, v: p.v * 100}));
  el.replaceChildren(h('h2', {}, `RED: ${service}`),
    h('p', {class: 'muted'}, `Server and consumer spans, ${stepMs / 1000}s steps over the last ${lookbackS / 3600}h;` +
      ' click a point to see its traces.'),
    h('div', {class: 'red-grid', dataset: {service}},
      chart('Requests per minute', [line(callPoints)], {}),
      chart('Error rate (%)', [line(errorPoints, {line: {color: '#d62728'}})], {tags: 'error=true'}),
      chart('Latency (ms)', ['p50', 'p95', 'p99'].map((name, k) => line(series(quantiles[k]), {name})), {})));
  await Promise.all(plots.map(plot));
}

export async function render(root, _params, query) {
  const lookback = LOOKBACKS.find(([k]) => k === query.get('lookback')) || LOOKBACKS[2];
  const select = h('select', {'aria-label': 'Time range'}, LOOKBACKS.map(([k]) =>
    h('option', {value: k, selected: k === lookback[0]}, `Last ${k}`)));
  select.addEventListener('change', () => navigate(`/map?lookback=${select.value}`));
  const graph = h('div', {class: 'graph-area'}, h('p', {class: 'muted'}, 'Loading dependencies…'));
  const red = h('section', {class: 'red', 'aria-label': 'RED charts'});
  root.replaceChildren(h('div', {class: 'map-page'},
    h('div', {class: 'toolbar'}, h('h1', {}, 'Service map'), select), graph, red));
  const now = Date.now();
  const links = await getDependencies(now, lookback[1] * 1000);
  let errors = new Map();
  try { errors = await edgeErrors((now - lookback[1] * 1000) * 1000); } catch { /* calls alone still draw the map */ }
  const onService = (s) => {
    const q = new URLSearchParams(location.search);
    q.set('service', s);
    history.replaceState(null, '', `/map?${q}`);
    redCharts(red, s, lookback[1]);
  };
  if (!links.length) graph.replaceChildren(h('p', {}, 'No dependencies in this time range.'));
  else graph.replaceChildren(drawGraph(links, errors, onService));
  graph.dataset.edges = String(links.length);
  if (query.get('service')) redCharts(red, query.get('service'), lookback[1]);
}
