// Compare two traces (/compare/{a}/{b}): spans matched by service and operation, with differences in
// count and duration highlighted.
import {getTrace} from './api.js';
import {buildTrace} from './trace-model.js';
import {fmtDuration, h, sortableTable} from './util.js';
import {Waterfall} from './waterfall.js';

function groups(model) {
  const out = new Map();
  for (const s of model.spans) {
    const key = `${s.service}\u0000${s.name}`;
    const g = out.get(key) || {service: s.service, operation: s.name, count: 0, total: 0, errors: 0};
    g.count++; g.total += s.duration; g.errors += s.error ? 1 : 0;
    out.set(key, g);
  }
  return out;
}

function summary(label, model) {
  const root = model.roots.length ? model.spans[model.roots[0]] : null;
  return h('div', {class: 'compare-side'},
    h('h2', {}, label, ' ', h('a', {href: `/trace/${model.traceID}`, class: 'mono'}, model.traceID)),
    h('p', {}, root ? `${root.service}: ${root.name}` : ''),
    h('p', {}, `${model.spans.length} spans · ${fmtDuration(model.duration)} · ${model.errorCount} errors`));
}

/** Rows of the diff: one per (service, operation) present in either trace. */
export function diffRows(a, b) {
  const ga = groups(a); const gb = groups(b);
  const keys = new Set([...ga.keys(), ...gb.keys()]);
  return [...keys].map((k) => {
    const x = ga.get(k); const y = gb.get(k);
    const base = x || y;
    const totalA = x ? x.total : 0; const totalB = y ? y.total : 0;
    return {service: base.service, operation: base.operation, countA: x ? x.count : 0, countB: y ? y.count : 0,
      totalA, totalB, delta: totalB - totalA, errorsA: x ? x.errors : 0, errorsB: y ? y.errors : 0};
  });
}

function rowClass(r) {
  if (!r.countA) return 'diff-added';
  if (!r.countB) return 'diff-removed';
  const slower = r.totalA ? (r.totalB - r.totalA) / r.totalA : 0;
  if (r.countA !== r.countB) return 'diff-count';
  if (Math.abs(slower) > 0.1) return slower > 0 ? 'diff-slower' : 'diff-faster';
  return '';
}

/** A waterfall of one side, with the spans whose (service, operation) differs highlighted. */
function sideWaterfall(model, changed, idPrefix) {
  const wf = new Waterfall(model, {idPrefix});
  const marks = new Uint8Array(model.spans.length);
  for (const s of model.spans) if (changed.has(`${s.service}\u0000${s.name}`)) marks[s.index] = 1;
  wf.matches = marks;
  wf.matchInfo.textContent = `${marks.reduce((a, b) => a + b, 0)} differing spans highlighted`;
  return wf;
}

export async function render(root, [idA, idB]) {
  root.append(h('p', {class: 'muted'}, 'Loading traces…'));
  const [a, b] = (await Promise.all([getTrace(idA), getTrace(idB)])).map(buildTrace);
  const cols = [
    {key: 'service', label: 'Service'}, {key: 'operation', label: 'Operation'},
    {key: 'countA', label: 'Spans A', num: true}, {key: 'countB', label: 'Spans B', num: true},
    {key: 'totalA', label: 'Time A', num: true, fmt: (v, r) => (r.countA ? fmtDuration(v) : '–')},
    {key: 'totalB', label: 'Time B', num: true, fmt: (v, r) => (r.countB ? fmtDuration(v) : '–')},
    {key: 'delta', label: 'B − A', num: true, fmt: (v) => (v > 0 ? '+' : '') + fmtDuration(v)},
    {key: 'errorsA', label: 'Errors A', num: true}, {key: 'errorsB', label: 'Errors B', num: true},
  ];
  const rows = diffRows(a, b);
  const changed = new Set(rows.filter((r) => rowClass(r)).map((r) => `${r.service}\u0000${r.operation}`));
  const sides = [sideWaterfall(a, changed, 'wfa'), sideWaterfall(b, changed, 'wfb')];
  root.replaceChildren(h('div', {class: 'compare-page'},
    h('h1', {}, 'Compare traces'),
    h('div', {class: 'compare-sides'}, summary('A', a), summary('B', b)),
    h('p', {class: 'legend'}, h('span', {class: 'diff-added'}, 'only in B'), h('span', {class: 'diff-removed'},
      'only in A'), h('span', {class: 'diff-count'}, 'span count differs'), h('span', {class: 'diff-slower'},
      'B >10% slower'), h('span', {class: 'diff-faster'}, 'B >10% faster')),
    sortableTable(cols, rows, {caption: 'Spans matched by service and operation', sortKey: 'delta', rowClass}),
    h('div', {class: 'compare-sides compare-waterfalls'}, sides.map((w) => w.el))));
  for (const w of sides) w.renderRows();
  return () => sides.forEach((w) => w.destroy());
}
