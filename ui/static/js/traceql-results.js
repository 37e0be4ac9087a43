// What a TraceQL query returns, drawn: matched spans per trace (Tempo's spanSets, select()ed attributes as
// columns), or for a metrics query a plotly time series (a heatmap for histogram_over_time) whose exemplar
// points open their trace.
import {metricsFunction} from './traceql.js';
import {announce, fmtDuration, h, loadPlotly, navigate, relativeTime, serviceChip, serviceColor,
  themedLayout} from './util.js';

/** An OTLP AnyValue as text. */
function anyValue(v) {
  if (!v) return '';
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return String(v.intValue);
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('boolValue' in v) return String(v.boolValue);
  return JSON.stringify(v);
}

function spanSetsOf(trace) {
  return trace.spanSets || (trace.spanSet ? [trace.spanSet] : []);
}

/** Every attribute key the returned spans carry (matched conditions and select()), first seen first. */
function attributeColumns(traces) {
  const keys = [];
  for (const t of traces) {
    for (const set of spanSetsOf(t)) {
      for (const span of set.spans || []) {
        for (const a of span.attributes || []) if (!keys.includes(a.key)) keys.push(a.key);
      }
    }
  }
  return keys;
}

function spanRows(trace, set, columns) {
  return (set.spans || []).map((span) => {
    const attrs = Object.fromEntries((span.attributes || []).map((a) => [a.key, anyValue(a.value)]));
    return h('tr', {},
      h('td', {}, h('a', {href: `/trace/${trace.traceID}?span=${span.spanID}`}, span.name || span.spanID)),
      h('td', {class: 'mono muted'}, span.spanID),
      h('td', {class: 'num'}, fmtDuration(Number(span.durationNanos) / 1000)),
      columns.map((k) => h('td', {class: 'mono', title: attrs[k] || ''}, attrs[k] ?? '')));
  });
}

function traceItem(trace, columns) {
  const sets = spanSetsOf(trace);
  const matched = sets.reduce((n, s) => n + (s.matched ?? (s.spans || []).length), 0);
  const shown = sets.reduce((n, s) => n + (s.spans || []).length, 0);
  const services = Object.entries(trace.serviceStats || {});
  const table = h('table', {class: 'data tql-spans', 'aria-label': `Matched spans of ${trace.traceID}`},
    h('thead', {}, h('tr', {}, h('th', {}, 'Span'), h('th', {}, 'Span ID'), h('th', {}, 'Duration'),
      columns.map((k) => h('th', {scope: 'col'}, k)))),
    sets.map((set) => h('tbody', {},
      (set.attributes || []).length ? h('tr', {class: 'tql-set-head'}, h('td', {colspan: 3 + columns.length},
        (set.attributes || []).map((a) => `${a.key} = ${anyValue(a.value)}`).join(', '))) : null,
      spanRows(trace, set, columns))));
  return h('li', {class: 'result tql-trace'},
    h('div', {class: 'result-head'},
      h('a', {href: `/trace/${trace.traceID}`, class: 'result-title'},
        `${trace.rootServiceName || '(root not yet received)'}: ${trace.rootTraceName || ''}`),
      h('span', {class: 'trace-id mono'}, trace.traceID),
      h('span', {class: 'duration'}, fmtDuration((trace.durationMs || 0) * 1000))),
    h('div', {class: 'result-meta'},
      // The server returns at most `spss` spans per spanset (3 unless the URL sets spss).
      h('span', {class: 'matched'}, `${matched} matched spans${shown < matched ? ` (${shown} shown)` : ''}`),
      h('span', {class: 'muted'}, relativeTime(Number(BigInt(trace.startTimeUnixNano || '0') / 1000n))),
      h('span', {class: 'services'}, services.map(([name, s]) => serviceChip(name, s.spanCount)))),
    table);
}

/** Render a TraceQL search response (traces with spanSets). */
export function renderSpanSets(el, body) {
  const traces = (body && body.traces) || [];
  const columns = attributeColumns(traces);
  el.replaceChildren(
    h('div', {class: 'results-bar'}, h('h2', {}, `${traces.length} traces`)),
    h('ol', {class: 'results tql-results', 'aria-label': 'Traces'}, traces.map((t) => traceItem(t, columns))));
  announce(`${traces.length} traces found`);
}

function labelText(labels) {
  const parts = (labels || []).filter((l) => l.key !== '__bucket').map((l) => `${l.key}=${anyValue(l.value)}`);
  return parts.join(', ') || 'all spans';
}

function exemplarTraceId(ex) {
  const label = (ex.labels || []).find((l) => l.key === 'trace:id' || l.key === 'trace_id');
  return label ? anyValue(label.value) : null;
}

/** Exemplars as one marker trace (the only points of the chart: the series are lines). */
function exemplarTrace(series, y) {
  const points = series.flatMap((s) => (s.exemplars || []).map((ex) => ({s, ex, id: exemplarTraceId(ex)})))
    .filter((p) => p.id);
  return {type: 'scatter', mode: 'markers', name: 'exemplars', x: points.map((p) => new Date(Number(p.ex.timestampMs))),
    y: points.map((p) => y(p)), customdata: points.map((p) => p.id),
    marker: {size: 9, symbol: 'diamond', color: points.map((p) => seriesColor(p.s.labels)),
      line: {width: 1, color: '#fff'}},
    hovertemplate: 'trace %{customdata}<br>click to open<extra></extra>'};
}

/** A series' colour: a series of one service takes that service's colour, as on every other page. */
function seriesColor(labels) {
  const own = (labels || []).filter((l) => l.key !== '__bucket');
  if (own.length === 1 && /^(resource\.)?service\.name$|^(trace:)?rootService(Name)?$/.test(own[0].key)) {
    return serviceColor(anyValue(own[0].value));
  }
  return serviceColor(labelText(labels));
}

function lineTraces(series) {
  return series.map((s) => {
    const name = labelText(s.labels);
    const samples = [...(s.samples || [])].sort((a, b) => Number(a.timestampMs) - Number(b.timestampMs));
    return {type: 'scatter', mode: 'lines', name, line: {color: seriesColor(s.labels), width: 2},
      x: samples.map((p) => new Date(Number(p.timestampMs))), y: samples.map((p) => p.value)};
  });
}

function isDurationQuery(q) {
  return /_over_time\(\s*(duration|span:duration|trace:duration|traceDuration)\b/.test(q);
}

/** histogram_over_time: buckets (label __bucket, an upper bound) as rows, steps as columns. */
function heatmapTraces(series, q) {
  const bound = (s) => Number(anyValue((s.labels || []).find((l) => l.key === '__bucket')?.value));
  const bounds = [...new Set(series.map(bound))].filter((b) => !Number.isNaN(b)).sort((a, b) => a - b);
  const label = (b) => (isDurationQuery(q) ? `≤ ${fmtDuration(b * 1e6)}` : `≤ ${b}`);
  const times = [...new Set(series.flatMap((s) => (s.samples || []).map((p) => Number(p.timestampMs))))]
    .sort((a, b) => a - b);
  const z = bounds.map(() => times.map(() => 0));
  for (const s of series) {
    const row = bounds.indexOf(bound(s));
    if (row < 0) continue;
    for (const p of s.samples || []) z[row][times.indexOf(Number(p.timestampMs))] += p.value;
  }
  // Empty cells stay empty (the page shows through) rather than taking the scale's lightest colour.
  const cells = z.map((row) => row.map((v) => (v > 0 ? v : null)));
  const heat = {type: 'heatmap', x: times.map((t) => new Date(t)), y: bounds.map(label), z: cells,
    hoverongaps: false,
    colorscale: 'YlOrRd', reversescale: true, hovertemplate: '%{y}<br>%{x}<br>%{z} spans<extra></extra>',
    colorbar: {title: {text: 'spans'}}};
  const ex = exemplarTrace(series, ({s}) => label(bound(s)));
  return [heat, ex];
}

/** Render a TraceQL metrics response: series lines (or a heatmap) with clickable exemplars. */
export async function renderMetrics(el, body, q) {
  const series = (body && body.series) || [];
  const fn = metricsFunction(q);
  const chart = h('div', {class: 'tql-chart', role: 'img',
    'aria-label': `${fn} over time${fn === 'histogram_over_time' ? ' (heatmap)' : ''}; click an exemplar to open its trace`});
  el.replaceChildren(h('div', {class: 'results-bar'}, h('h2', {}, `${series.length} series`),
    h('span', {class: 'muted'}, 'Diamonds are exemplars: click one to open its trace.')), chart);
  announce(`${series.length} series`);
  if (!series.length) return;
  const Plotly = await loadPlotly();
  const heatmap = fn === 'histogram_over_time';
  const unitless = fn === 'rate' ? 'spans/s' : fn === 'count_over_time' ? 'spans' : '';
  const traces = heatmap ? heatmapTraces(series, q)
    : [...lineTraces(series), exemplarTrace(series, ({ex}) => ex.value)];
  await Plotly.newPlot(chart, traces, themedLayout({
    margin: {l: heatmap ? 90 : 70, r: 10, t: 10, b: 40}, height: 360, showlegend: !heatmap,
    legend: {orientation: 'h', y: -0.2},
    yaxis: heatmap ? {type: 'category', title: {text: isDurationQuery(q) ? 'duration' : 'bucket'}}
      : {title: {text: unitless || (isDurationQuery(q) ? 'seconds' : fn)}, rangemode: 'tozero'},
  }), {displaylogo: false, responsive: true});
  const exemplarIds = traces[traces.length - 1].customdata;
  chart.on('plotly_click', (ev) => {
    // The diamond under the mouse wins: plotly reports the point its throttled hover last found, which
    // can be a line's sample on the same peak, a heatmap cell, or the diamond the mouse just left.
    const point = ev.points.find((p) => typeof p.customdata === 'string');
    const id = nearestExemplar(chart, ev.event, exemplarIds) || (point && point.customdata);
    if (id) navigate(`/trace/${id}`);
  });
}

/** The exemplar drawn under the mouse (the closest diamond within a few pixels), or null. */
function nearestExemplar(chart, event, ids) {
  if (!event) return null;
  const layers = chart.querySelectorAll('.scatterlayer .trace');
  const marks = layers.length ? layers[layers.length - 1].querySelectorAll('.point') : [];
  let best = null;
  let bestDistance = 12;  // px: about a diamond's size plus a little aim
  marks.forEach((mark, i) => {
    const r = mark.getBoundingClientRect();
    const d = Math.hypot(r.x + r.width / 2 - event.clientX, r.y + r.height / 2 - event.clientY);
    if (d <= bestDistance) { best = ids[i]; bestDistance = d; }
  });
  return best;
}
