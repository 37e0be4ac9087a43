// The query API, as the UI uses it: Jaeger v1 JSON endpoints, the SQL endpoint and the Tempo API under
// /tempo (TraceQL search, tag autocomplete, TraceQL metrics). Nothing else.

async function readJson(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    throw new Error(`${response.status} ${response.statusText}: ${text.slice(0, 300)}`);
  }
}

function errorMessage(body, response) {
  if (body && Array.isArray(body.errors) && body.errors.length) {
    return body.errors.map((e) => e.msg || JSON.stringify(e)).join('; ');
  }
  if (body && body.error) return body.error;
  if (body && body.detail) return typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail);
  return `${response.status} ${response.statusText}`;
}

/** GET or POST a Jaeger envelope endpoint and return its `data`; throws with the server's messages. */
async function envelope(url, init) {
  const response = await fetch(url, init);
  const body = await readJson(response);
  if (!response.ok) throw new Error(errorMessage(body, response));
  return body && 'data' in body ? body.data : body;
}

export function getServices() {
  return envelope('/api/services').then((d) => (d || []).slice().sort());
}

export function getOperations(service) {
  return envelope(`/api/services/${encodeURIComponent(service)}/operations`)
    .then((d) => (d || []).map((o) => (typeof o === 'string' ? o : o.name)).sort());
}

/** Search traces: params are Jaeger's /api/traces query parameters. */
export function searchTraces(params) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null) qs.set(k, v);
  return envelope(`/api/traces?${qs}`).then((d) => d || []);
}

export async function getTrace(traceId) {
  const data = await envelope(`/api/traces/${encodeURIComponent(traceId)}`);
  if (!data || !data.length) throw new Error(`trace ${traceId} not found`);
  return data[0];
}

export function getDependencies(endMs, lookbackMs) {
  return envelope(`/api/dependencies?endTs=${Math.round(endMs)}&lookback=${Math.round(lookbackMs)}`)
    .then((d) => d || []);
}

/** Jaeger SPM: /api/metrics/{calls,errors,latencies}; resolves to the proto-JSON MetricFamily. */
export async function getMetrics(metric, params) {
  const response = await fetch(`/api/metrics/${metric}?${params}`);
  const body = await readJson(response);
  if (!response.ok) throw new Error(errorMessage(body, response));
  return body;
}

/** Convert an OTLP JSON document to Jaeger UI traces on the server, without storing it. */
export function transformOtlp(text) {
  return envelope('/api/transform', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: text})
    .then((d) => d || []);
}

/** Run SQL: resolves to {columns, rows, truncated, elapsed_ms}; rejects with DuckDB's message. */
export async function runSql(query) {
  let response;
  for (let attempt = 0; ; attempt++) {
    response = await fetch('/api/sql', {
      method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({query}),
    });
    // 503 means the server's concurrent-query limit is reached: wait as told and retry a few times.
    if (response.status !== 503 || attempt >= 4) break;
    const wait = Number(response.headers.get('Retry-After')) || 1;
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
  const body = await readJson(response);
  if (!response.ok) throw new Error(errorMessage(body, response));
  return body;
}

/** Quote a string as a SQL literal (for values the UI itself puts into queries, e.g. a service name). */
export function sqlString(value) {
  return `'${String(value).replace(/'/g, "''")}'`;
}

/** An error from the Tempo API: its plain-text message, and for TraceQL syntax errors the position. */
export class TempoError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
    const m = /line (\d+), col (\d+)/.exec(message);
    this.position = m ? {line: Number(m[1]), col: Number(m[2])} : null;
  }
}

/** GET a Tempo endpoint (errors are plain text, as Tempo's are). */
async function tempo(path, params) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== '' && v !== undefined && v !== null) qs.set(k, v);
  const response = await fetch(`/tempo/api/${path}?${qs}`);
  const text = await response.text();
  if (!response.ok) throw new TempoError(text.trim() || `${response.status} ${response.statusText}`, response.status);
  return text ? JSON.parse(text) : null;
}

/** TraceQL search: {traces: [{traceID, ..., spanSets: [{spans, matched, attributes}]}]}; start/end in s. */
export function traceqlSearch(q, {start, end, limit, spss}) {
  return tempo('search', {q, start, end, limit, spss});
}

/** TraceQL metrics over a range: {series: [{labels, samples, exemplars}]}; start/end in s. */
export function traceqlMetrics(q, {start, end, step}) {
  return tempo('metrics/query_range', {q, start, end, step});
}

/** Attribute names per scope: {scope: [names]} (scope "intrinsic" holds the intrinsics). */
export async function traceqlTags() {
  const body = await tempo('v2/search/tags', {});
  return Object.fromEntries(((body && body.scopes) || []).map((s) => [s.name, s.tags || []]));
}

/** Values of one attribute (e.g. resource.service.name), among spans matching the TraceQL `q` if given. */
export async function traceqlTagValues(tag, q) {
  const body = await tempo(`v2/search/tag/${encodeURIComponent(tag)}/values`, {q});
  return (body && body.tagValues) || [];
}
