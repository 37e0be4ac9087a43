// The span detail panel: kind, status, timing, attributes, resource, scope, events and links.
import {spanAttributes} from './trace-model.js';
import {fmtDuration, h} from './util.js';

function kvTable(caption, items) {
  if (!items.length) return h('p', {class: 'muted'}, `No ${caption.toLowerCase()}.`);
  return h('table', {class: 'kv'}, h('caption', {}, caption),
    h('tbody', {}, items.map((t) => h('tr', {},
      h('th', {scope: 'row', title: t.key}, breakableKey(t.key)),
      h('td', {class: `kv-${t.type || 'string'}`}, formatValue(t.value))))));
}

function formatValue(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function section(title, ...content) {
  return h('section', {class: 'detail-section'}, h('h3', {}, title), ...content);
}

const REF_LABELS = {FOLLOWS_FROM: 'follows from', CHILD_OF: 'child of'};

function linkItem(ref, model, onSpan) {
  const local = ref.traceID === model.raw.traceID || ref.traceID === model.traceID;
  const target = local ? model.spans.find((s) => s.spanID === ref.spanID) : null;
  const kind = h('span', {class: 'link-kind'}, REF_LABELS[ref.refType] || 'link');
  const ids = `${local ? 'this trace' : `trace ${ref.traceID}`} · span ${ref.spanID}`;
  if (target) {
    return h('li', {dataset: {refType: ref.refType || ''}}, kind, ' ',
      h('button', {type: 'button', class: 'link-button', onclick: () => onSpan(target.index)},
        `${target.service}: ${target.name}`), h('span', {class: 'muted mono'}, ` ${ids}`));
  }
  // A link into another trace opens that trace with the linked span selected.
  const href = `/trace/${encodeURIComponent(ref.traceID)}?${new URLSearchParams({span: ref.spanID})}`;
  return h('li', {dataset: {refType: ref.refType || ''}}, kind, ' ', h('a', {href, class: 'mono'}, ids));
}

/** Break opportunities after the separators of dotted keys (telemetry.sdk.language), so a narrow
 * column wraps a key between its parts, never inside one. */
function breakableKey(key) {
  const parts = String(key).split(/(?<=[._\-/:])/);
  const out = [];
  parts.forEach((p, i) => { if (i) out.push(h('wbr')); out.push(p); });
  return out;
}

/** Render the detail of span `index` into `el`. `onSpan(i)` jumps to another span of this trace. */
export function renderDetail(el, model, index, onSpan) {
  const s = model.spans[index];
  const logs = s.raw.logs || [];
  const events = logs.map((log) => {
    const nameField = (log.fields || []).find((f) => f.key === 'event');
    const fields = (log.fields || []).filter((f) => f !== nameField);
    return h('li', {class: 'event'},
      h('div', {}, h('strong', {}, `+${fmtDuration(log.timestamp - s.start)}`), ' ',
        nameField ? String(nameField.value) : '(event)'),
      fields.length ? kvTable('Event attributes', fields) : null);
  });
  const refs = (s.raw.references || []);
  const parentRef = refs.find((r) => r.refType === 'CHILD_OF' && r.spanID === s.parentID);
  const links = refs.filter((r) => r !== parentRef);
  el.replaceChildren(...[
    h('div', {class: 'detail-head'},
      h('h2', {id: 'detail-title', tabindex: -1}, `${s.service}: ${s.name}`),
      h('button', {type: 'button', class: 'close', 'aria-label': 'Close span details',
        onclick: () => { el.hidden = true; }}, '×')),
    h('dl', {class: 'facts'},
      h('dt', {}, 'Span ID'), h('dd', {class: 'mono'}, s.spanID),
      h('dt', {}, 'Parent'), h('dd', {}, s.parent >= 0
        ? h('button', {type: 'button', class: 'link-button', onclick: () => onSpan(s.parent)}, s.parentID)
        : (s.parentID ? `${s.parentID} (not in trace)` : 'none (root)')),
      h('dt', {}, 'Kind'), h('dd', {class: 'span-kind'}, s.kind || 'unspecified'),
      h('dt', {}, 'Status'), h('dd', {class: s.error ? 'status-error' : 'status'},
        s.status + (s.statusMessage ? `: ${s.statusMessage}` : '')),
      h('dt', {}, 'Start'), h('dd', {}, `+${fmtDuration(s.start - model.start)}`),
      h('dt', {}, 'Duration'), h('dd', {}, fmtDuration(s.duration)),
      h('dt', {}, 'Self time'), h('dd', {}, fmtDuration(s.selfTime)),
      h('dt', {}, 'Critical path'), h('dd', {}, s.critical ? 'yes' : 'no')),
    section('Attributes', kvTable('Span attributes', spanAttributes(s))),
    section('Resource', kvTable(`Resource of ${s.service}`, [{key: 'service.name', value: s.service},
      ...(s.process.tags || [])])),
    section('Scope', s.scopeName
      ? h('p', {class: 'scope'}, s.scopeName, s.scopeVersion ? ` ${s.scopeVersion}` : '')
      : h('p', {class: 'muted'}, 'No instrumentation scope.')),
    section(`Events (${logs.length})`, logs.length ? h('ol', {class: 'events'}, events)
      : h('p', {class: 'muted'}, 'No events.')),
    section(`Links (${links.length})`, links.length
      ? h('ul', {class: 'links'}, links.map((r) => linkItem(r, model, onSpan)))
      : h('p', {class: 'muted'}, 'No links.')),
    (s.raw.warnings || []).length ? section('Warnings', h('ul', {}, s.raw.warnings.map((w) => h('li', {}, w))))
      : null].filter(Boolean));
  el.hidden = false;
}
