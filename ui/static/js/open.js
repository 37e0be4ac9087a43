// Open a trace file (/open) without storing it: Jaeger JSON is read in the browser; OTLP JSON is
// converted by the server's stateless POST /api/transform.
import {transformOtlp} from './api.js';
import {renderTraceData} from './trace.js';
import {errorBox, fmtDuration, h} from './util.js';

/** Jaeger traces from a parsed document: {data:[...]}, [trace, ...] or a single trace. */
function jaegerTraces(doc) {
  if (Array.isArray(doc)) return doc.flatMap(jaegerTraces);
  if (doc && Array.isArray(doc.data)) return doc.data;
  if (doc && Array.isArray(doc.spans)) return [doc];
  return null;
}

function isOtlp(doc) {
  return doc && (Array.isArray(doc.resourceSpans) || Array.isArray(doc.resource_spans) ||
    (doc.result && Array.isArray(doc.result.resourceSpans)));
}

/** Parse a file's text (JSON, or JSON lines) into Jaeger traces, transforming OTLP on the server. */
export async function tracesFromText(text) {
  let docs;
  try {
    docs = [JSON.parse(text)];
  } catch {
    try {
      docs = text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    } catch (err) {
      throw new Error(`not JSON or JSON lines: ${err.message}`);
    }
  }
  const out = [];
  for (const doc of docs) {
    if (isOtlp(doc)) {
      const otlp = doc.result ? doc.result : doc;
      const began = performance.now();
      out.push(...await transformOtlp(docs.length === 1 && !doc.result ? text : JSON.stringify(otlp)));
      // Exposed for the benchmark: how much of opening a file was the server-side conversion.
      window.spanlakeOpenTiming = {transformMs: performance.now() - began};
      continue;
    }
    const traces = jaegerTraces(doc);
    if (!traces) throw new Error('neither OTLP JSON (resourceSpans) nor Jaeger JSON (data / spans)');
    out.push(...traces);
  }
  return out;
}

function showList(area, traces, name) {
  area.replaceChildren(h('h2', {}, `${traces.length} traces in ${name}`),
    h('ul', {class: 'results'}, traces.map((t) => {
      const n = (t.spans || []).length;
      const start = t.spans.reduce((m, s) => Math.min(m, s.startTime), Infinity);
      const end = t.spans.reduce((m, s) => Math.max(m, s.startTime + s.duration), -Infinity);
      return h('li', {class: 'result'}, h('button', {type: 'button', class: 'link-button',
        onclick: () => renderTraceData(area, t, {source: name})},
      `${t.traceID} · ${n} spans · ${fmtDuration(end - start)}`));
    })));
}

export function render(root) {
  let cleanup = null;
  const area = h('div', {class: 'open-result'});
  const input = h('input', {type: 'file', id: 'trace-file', class: 'visually-hidden',
    accept: '.json,.jsonl,application/json'});
  const status = h('p', {class: 'muted', role: 'status'});
  const load = async (file) => {
    // Exposed for the benchmark: opening a file is timed from here to the waterfall's first paint.
    window.spanlakeOpenStart = performance.now();
    status.textContent = `Reading ${file.name}…`;
    try {
      const traces = await tracesFromText(await file.text());
      status.textContent = `${file.name}: ${traces.length} trace(s), not stored.`;
      if (cleanup) cleanup();
      if (traces.length === 1) cleanup = renderTraceData(area, traces[0], {source: file.name});
      else showList(area, traces, file.name);
    } catch (err) {
      status.textContent = '';
      area.replaceChildren(errorBox(`Could not open ${file.name}: ${err.message}`));
    }
  };
  input.addEventListener('change', () => { if (input.files.length) load(input.files[0]); });
  const drop = h('div', {class: 'dropzone'},
    h('p', {}, 'Drop an OTLP JSON or Jaeger JSON trace file here, or choose one. Nothing is stored.'),
    input, h('label', {for: 'trace-file', class: 'button'}, 'Choose file…'));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files.length) load(e.dataTransfer.files[0]);
  });
  root.replaceChildren(h('div', {class: 'open-page'}, h('h1', {}, 'Open a trace file'), drop, status, area));
  return () => { if (cleanup) cleanup(); };
}
