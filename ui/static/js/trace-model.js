// Turns one Jaeger UI trace (GET /api/traces/{id} `data[0]`) into the model every trace view draws:
// spans in depth-first order with depth, parent and subtree size, plus the critical path and statistics.
// Everything is iterative (no recursion) so a 100,000-span chain cannot overflow the stack.

// Tags the span detail shows in its own fields (kind, status, scope) rather than among the attributes.
const HIDDEN_TAGS = new Set(['span.kind', 'otel.status_code', 'otel.status_description',
  'otel.scope.name', 'otel.scope.version', 'otel.library.name', 'otel.library.version']);
const SPECIAL_TAGS = new Set([...HIDDEN_TAGS, 'error']);

/** A span's attributes without the tags shown in their own fields (computed when the detail opens). */
export function spanAttributes(span) {
  return (span.raw.tags || []).filter((t) => !HIDDEN_TAGS.has(t.key));
}

/** The few tags the model reads, in one pass (a Map per span costs too much at 100,000 spans). */
function specialTags(tags) {
  const out = {};
  for (const t of tags || []) if (SPECIAL_TAGS.has(t.key) && !(t.key in out)) out[t.key] = t.value;
  return out;
}

function isError(tags) {
  const err = tags.error;
  const code = tags['otel.status_code'];
  return err === true || err === 'true' || code === 'ERROR' || code === 'STATUS_CODE_ERROR';
}

function parentOf(span) {
  const refs = span.references || [];
  const ref = refs.find((r) => r.refType === 'CHILD_OF' && r.traceID === span.traceID) ||
    refs.find((r) => r.refType === 'CHILD_OF') || refs.find((r) => r.traceID === span.traceID);
  return ref ? ref.spanID : (span.parentSpanID || null);
}

function makeSpan(raw, processes, index) {
  const tags = specialTags(raw.tags);
  const process = (raw.processID && processes[raw.processID]) || raw.process || {serviceName: '', tags: []};
  const start = Number(raw.startTime);
  const duration = Number(raw.duration);
  return {
    index, raw, process,
    spanID: raw.spanID, traceID: raw.traceID, name: raw.operationName || '',
    service: process.serviceName || '', start, duration, end: start + duration,
    parentID: parentOf(raw), parent: -1, children: [], depth: 0, size: 1,
    kind: tags['span.kind'] || '', status: tags['otel.status_code'] || (isError(tags) ? 'ERROR' : 'UNSET'),
    statusMessage: tags['otel.status_description'] || '', error: isError(tags),
    scopeName: tags['otel.scope.name'] || tags['otel.library.name'] || '',
    scopeVersion: tags['otel.scope.version'] || tags['otel.library.version'] || '',
    critical: false, selfTime: 0,
  };
}

/** Build the model. `order` is the depth-first row order; spans[i].size counts its subtree rows. */
export function buildTrace(trace) {
  const processes = trace.processes || {};
  const spans = (trace.spans || []).map((s, i) => makeSpan(s, processes, i));
  const byId = new Map();
  for (const s of spans) if (!byId.has(s.spanID)) byId.set(s.spanID, s.index);
  const roots = [];
  for (const s of spans) {
    const p = s.parentID !== null ? byId.get(s.parentID) : undefined;
    // A missing parent (not yet arrived, or outside this trace) makes the span a root: never drop it.
    if (p === undefined || p === s.index) roots.push(s.index);
    else { s.parent = p; spans[p].children.push(s.index); }
  }
  const byStart = (a, b) => spans[a].start - spans[b].start || spans[a].index - spans[b].index;
  roots.sort(byStart);
  for (const s of spans) if (s.children.length > 1) s.children.sort(byStart);
  const order = depthFirst(spans, roots);
  if (order.length < spans.length) {
    // Cycles (a -> b -> a) are unreachable from any root: show them as extra roots.
    const seen = new Uint8Array(spans.length);
    for (const i of order) seen[i] = 1;
    const extra = spans.filter((s) => !seen[s.index]).map((s) => s.index);
    for (const i of extra) { spans[i].parent = -1; }
    order.push(...depthFirst(spans, extra, seen));
  }
  computeSizes(spans, order);
  let start = Infinity; let end = -Infinity;
  for (const s of spans) { start = Math.min(start, s.start); end = Math.max(end, s.end); }
  if (!spans.length) { start = 0; end = 0; }
  const model = {
    traceID: trace.traceID || (spans[0] && spans[0].traceID) || '', raw: trace, spans, order, roots,
    start, end, duration: end - start, services: countServices(spans),
    maxDepth: spans.reduce((m, s) => Math.max(m, s.depth), 0),
    errorCount: spans.filter((s) => s.error).length,
  };
  markCriticalPath(model);
  computeSelfTimes(spans);
  return model;
}

function depthFirst(spans, roots, seen = new Uint8Array(spans.length)) {
  const order = [];
  const stack = roots.slice().reverse().map((i) => [i, 0]);
  while (stack.length) {
    const [i, depth] = stack.pop();
    if (seen[i]) continue;
    seen[i] = 1;
    spans[i].depth = depth;
    order.push(i);
    const kids = spans[i].children;
    for (let k = kids.length - 1; k >= 0; k--) stack.push([kids[k], depth + 1]);
  }
  return order;
}

function computeSizes(spans, order) {
  for (let k = order.length - 1; k >= 0; k--) {
    const s = spans[order[k]];
    if (s.parent >= 0) spans[s.parent].size += s.size;
  }
}

function countServices(spans) {
  const counts = new Map();
  for (const s of spans) counts.set(s.service, (counts.get(s.service) || 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([name, count]) => ({name, count}));
}

/**
 * The critical path, after Jaeger UI's criticalPath.ts: start at the root's end, step into the child
 * that finished last before the current point in time, and when a span has no such child, return to
 * its parent at the span's start. Spans visited this way are what the trace's latency waited on.
 */
export function markCriticalPath(model) {
  const {spans, roots} = model;
  if (!roots.length) return;
  const root = roots.reduce((a, b) => (spans[b].end - spans[b].start > spans[a].end - spans[a].start ? b : a));
  const visited = new Uint8Array(spans.length);
  let current = root;
  let until = spans[root].end;
  for (let guard = 0; guard < 4 * spans.length + 4; guard++) {
    const span = spans[current];
    span.critical = true;
    visited[current] = 1;
    let best = -1;
    for (const c of span.children) {
      const child = spans[c];
      // Children that overflow the parent are clipped to it, as Jaeger does.
      const childEnd = Math.min(child.end, span.end);
      if (visited[c] || child.start >= span.end || childEnd > until) continue;
      if (best < 0 || childEnd > Math.min(spans[best].end, span.end)) best = c;
    }
    if (best >= 0) { current = best; until = Math.min(spans[best].end, span.end); continue; }
    if (current === root || span.parent < 0) break;
    until = span.start;
    current = span.parent;
  }
}

/** Self time: the part of a span not covered by any of its children (children clipped to it). */
function computeSelfTimes(spans) {
  for (const s of spans) {
    if (!s.children.length) { s.selfTime = s.duration; continue; }
    const intervals = s.children.map((c) => [Math.max(spans[c].start, s.start), Math.min(spans[c].end, s.end)])
      .filter(([a, b]) => b > a).sort((a, b) => a[0] - b[0]);
    let covered = 0; let curStart = -Infinity; let curEnd = -Infinity;
    for (const [a, b] of intervals) {
      if (a > curEnd) { if (curEnd > curStart) covered += curEnd - curStart; curStart = a; curEnd = b; }
      else curEnd = Math.max(curEnd, b);
    }
    if (curEnd > curStart) covered += curEnd - curStart;
    s.selfTime = Math.max(0, s.duration - covered);
  }
}

/** Rows per (service, operation): count, total, self, avg, min, max (µs). */
export function statistics(model) {
  const groups = new Map();
  for (const s of model.spans) {
    const key = `${s.service}\u0000${s.name}`;
    let g = groups.get(key);
    if (!g) {
      g = {service: s.service, operation: s.name, count: 0, total: 0, self: 0, min: Infinity, max: 0, errors: 0};
      groups.set(key, g);
    }
    g.count++; g.total += s.duration; g.self += s.selfTime; g.errors += s.error ? 1 : 0;
    g.min = Math.min(g.min, s.duration); g.max = Math.max(g.max, s.duration);
  }
  return [...groups.values()].map((g) => ({...g, avg: g.total / g.count}));
}

/** One line per trace for search results (Jaeger's trace summary). */
export function summarize(trace) {
  const m = buildTrace(trace);
  const rootIdx = m.roots.length ? m.roots[0] : -1;
  const root = rootIdx >= 0 ? m.spans[rootIdx] : null;
  return {
    traceID: m.traceID, rootService: root ? root.service : '', rootName: root ? root.name : '',
    start: m.start, duration: m.duration, spanCount: m.spans.length, errorCount: m.errorCount,
    services: m.services,
  };
}
