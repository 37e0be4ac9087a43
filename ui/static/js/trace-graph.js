// Trace graph: the trace as a DAG with one node per (service, operation), as Jaeger UI's trace graph.
// Edges count the calls from one node's spans to the other's; the nodes and edges the critical path
// runs through are highlighted. Layers run top to bottom by the shallowest depth a node occurs at.
import {fmtDuration, serviceColor} from './util.js';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 200;
const NODE_H = 48;
const GAP_X = 28;
const LAYER_H = 100;
const PAD = 20;
// A trace can have thousands of distinct operations (each span of a chain named apart): beyond this
// many nodes the graph keeps the most-called ones, so the page stays usable.
export const MAX_NODES = 300;

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

const keyOf = (s) => `${s.service}\u0000${s.name}`;

/** Nodes and edges of the graph for a trace model (built by trace-model.js). */
export function graphOf(model) {
  const nodes = new Map();
  const edges = new Map();
  const {spans} = model;
  for (const i of model.order) {
    const s = spans[i];
    const key = keyOf(s);
    let node = nodes.get(key);
    if (!node) {
      node = {key, service: s.service, name: s.name, count: 0, errors: 0, total: 0, self: 0, critical: false,
        depth: s.depth, first: nodes.size, spans: []};
      nodes.set(key, node);
    }
    node.count++; node.errors += s.error ? 1 : 0; node.total += s.duration; node.self += s.selfTime;
    node.critical ||= s.critical;
    node.depth = Math.min(node.depth, s.depth);
    node.spans.push(i);
    if (s.parent < 0) continue;
    const parent = spans[s.parent];
    const edgeKey = `${keyOf(parent)}\u0001${key}`;
    let edge = edges.get(edgeKey);
    if (!edge) {
      edge = {key: edgeKey, from: keyOf(parent), to: key, calls: 0, critical: false};
      edges.set(edgeKey, edge);
    }
    edge.calls++;
    // The critical path steps from a critical span into a critical child: that call is on the path.
    edge.critical ||= s.critical && parent.critical;
  }
  return {nodes: [...nodes.values()], edges: [...edges.values()]};
}

/** Keep MAX_NODES nodes (every critical one, then the most called), and the edges between them. */
function limit(graph) {
  if (graph.nodes.length <= MAX_NODES) return {...graph, hidden: 0};
  // Critical first, then most called, then the shallowest (the top of the trace reads best).
  const ranked = [...graph.nodes].sort((a, b) => Number(b.critical) - Number(a.critical) || b.count - a.count ||
    a.depth - b.depth || a.first - b.first);
  const kept = new Set(ranked.slice(0, MAX_NODES).map((n) => n.key));
  return {nodes: graph.nodes.filter((n) => kept.has(n.key)),
    edges: graph.edges.filter((e) => kept.has(e.from) && kept.has(e.to)),
    hidden: graph.nodes.length - kept.size};
}

function layout(nodes) {
  const layers = new Map();
  for (const n of [...nodes].sort((a, b) => a.depth - b.depth || a.first - b.first)) {
    if (!layers.has(n.depth)) layers.set(n.depth, []);
    layers.get(n.depth).push(n);
  }
  const depths = [...layers.keys()].sort((a, b) => a - b);
  const widest = Math.max(1, ...[...layers.values()].map((l) => l.length));
  const width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X;
  const pos = new Map();
  depths.forEach((d, row) => {
    const list = layers.get(d);
    const rowWidth = list.length * NODE_W + (list.length - 1) * GAP_X;
    const x0 = (width - rowWidth) / 2;
    list.forEach((n, k) => pos.set(n.key, {x: x0 + k * (NODE_W + GAP_X), y: PAD + row * LAYER_H}));
  });
  return {pos, width, height: PAD * 2 + depths.length * LAYER_H - (LAYER_H - NODE_H)};
}

const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

function edgeEl(e, pos) {
  const a = pos.get(e.from); const b = pos.get(e.to);
  let d;
  let labelAt;
  if (b.y > a.y) {
    // Downwards: from the bottom of the caller to the top of the callee.
    const [x1, y1, x2, y2] = [a.x + NODE_W / 2, a.y + NODE_H, b.x + NODE_W / 2, b.y];
    d = `M${x1},${y1} C${x1},${(y1 + y2) / 2} ${x2},${(y1 + y2) / 2} ${x2},${y2 - 2}`;
    labelAt = [(x1 + x2) / 2, (y1 + y2) / 2];
  } else {
    // A call back to the same or an earlier layer (recursion): loop out on the right.
    const [x1, y1, x2, y2] = [a.x + NODE_W, a.y + NODE_H / 2, b.x + NODE_W, b.y + NODE_H / 2];
    const out = Math.max(x1, x2) + 40;
    d = `M${x1},${y1} C${out},${y1} ${out},${y2} ${x2 + 2},${y2}`;
    labelAt = [out - 8, (y1 + y2) / 2];
  }
  const label = `${e.calls} call${e.calls === 1 ? '' : 's'}`;
  const [from, to] = [e.from, e.to].map((k) => k.replace('\u0000', ': '));
  return svg('g', {class: `tg-edge${e.critical ? ' is-critical' : ''}`, 'data-from': from, 'data-to': to,
    'data-calls': e.calls},
  svg('title', {}, `${from} → ${to}: ${label}${e.critical ? ' (critical path)' : ''}`),
  svg('path', {d, 'marker-end': `url(#${e.critical ? 'tg-arrow-critical' : 'tg-arrow'})`}),
  // A plate behind the label hides the edge line where it would show between the words.
  svg('rect', {x: labelAt[0] - label.length * 3.3 - 3, y: labelAt[1] - 7, width: label.length * 6.6 + 6, height: 14,
    rx: 3, class: 'tg-edge-plate'}),
  svg('text', {x: labelAt[0], y: labelAt[1] + 4, 'text-anchor': 'middle', class: 'tg-edge-label'}, label));
}

function nodeEl(n, p, open) {
  const label = `${n.service}: ${n.name}, ${n.count} span${n.count === 1 ? '' : 's'}, ` +
    `${fmtDuration(n.total)} total, ${fmtDuration(n.self)} self${n.errors ? `, ${n.errors} errors` : ''}` +
    `${n.critical ? ', on the critical path' : ''}`;
  const g = svg('g', {class: `tg-node${n.critical ? ' is-critical' : ''}${n.errors ? ' is-error' : ''}`,
    transform: `translate(${p.x},${p.y})`, tabindex: 0, role: 'button', 'aria-label': `${label}. Show in timeline`,
    'data-service': n.service, 'data-operation': n.name, 'data-count': n.count},
  svg('title', {}, label),
  svg('rect', {class: 'tg-box', width: NODE_W, height: NODE_H, rx: 6}),
  svg('rect', {class: 'tg-svc', width: 6, height: NODE_H, rx: 2, fill: serviceColor(n.service)}),
  svg('text', {x: 14, y: 18, class: 'tg-service'}, clip(n.service, 26)),
  svg('text', {x: 14, y: 36, class: 'tg-op'}, clip(n.name, 22)),
  svg('text', {x: NODE_W - 8, y: 18, 'text-anchor': 'end', class: 'tg-count'}, `×${n.count}`),
  svg('text', {x: NODE_W - 8, y: 36, 'text-anchor': 'end', class: 'tg-time'}, fmtDuration(n.total)));
  g.addEventListener('click', open);
  g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
  return g;
}

/** The trace graph panel. `onSpan(i)` shows span i in the timeline (a node opens its first span,
 * or its first critical one). */
export function traceGraph(model, onSpan) {
  const graph = limit(graphOf(model));
  const {pos, width, height} = layout(graph.nodes);
  const nodes = graph.nodes.map((n) => {
    const target = n.spans.find((i) => model.spans[i].critical) ?? n.spans[0];
    return nodeEl(n, pos.get(n.key), () => onSpan(target));
  });
  // Arrow heads sized in px, not in stroke widths, so the bold critical edges keep the same arrows.
  const marker = (id) => svg('marker', {id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 10,
    markerHeight: 10, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse'},
  svg('path', {d: 'M0,0 L10,5 L0,10 z'}));
  const picture = svg('svg', {class: 'trace-graph', viewBox: `0 0 ${width + 60} ${height}`, width: width + 60, height,
    role: 'group', 'aria-label': `Trace graph: ${graph.nodes.length} operations, ${graph.edges.length} edges`},
  svg('defs', {}, marker('tg-arrow'), marker('tg-arrow-critical')),
  ...graph.edges.map((e) => edgeEl(e, pos)), ...nodes);
  const wrap = document.createElement('div');
  wrap.className = 'trace-graph-panel';
  const note = document.createElement('p');
  note.className = 'muted tg-legend';
  note.textContent = 'One node per service and operation (×spans, total time); edges count calls. ' +
    'The critical path is drawn bold. Click a node to see its span in the timeline.' +
    (graph.hidden ? ` ${graph.hidden} less-called operations are not shown.` : '');
  const area = document.createElement('div');
  area.className = 'graph-area';
  area.append(picture);
  wrap.append(note, area);
  // Layers are centred, so a wide graph starts with its root out of view: scroll the root into the
  // middle once the panel has its size.
  const root = graph.nodes.length ? pos.get(graph.nodes.reduce((a, b) => (b.depth < a.depth ? b : a)).key) : null;
  requestAnimationFrame(() => {
    if (root) area.scrollLeft = Math.max(0, root.x + NODE_W / 2 - area.clientWidth / 2);
  });
  return wrap;
}
