// The trace waterfall: a virtualised tree grid. Only the rows in (and just around) the viewport exist in
// the DOM, so a 100,000-span trace costs the same to scroll as a 20-span one. The full row count is
// exposed through aria-rowcount, and each rendered row through aria-rowindex / aria-level.
import {fmtDuration, h, serviceColor} from './util.js';

const ROW_HEIGHT = 24;
const OVERSCAN = 12;
const MAX_INDENT_LEVELS = 40;
// Rows a trace opens with. Virtual rows scroll at the same speed at any count, but a person cannot
// read 100,000 rows and every expand, search and minimap redraw walks them all; past this budget the
// deepest levels that do not fit start collapsed, each parent showing how many spans it hides.
export const ROW_BUDGET = 10_000;

export class Waterfall {
  constructor(model, {onSelect, idPrefix = 'wf'} = {}) {
    this.model = model;
    this.idPrefix = idPrefix; // row element ids must stay unique when two waterfalls share a page
    this.onSelect = onSelect || (() => {});
    this.collapsed = new Uint8Array(model.spans.length);
    this.matches = null;
    this.matchList = [];
    this.matchPos = -1;
    this.selected = -1;
    this.focusRow = 0;
    this.frame = 0;
    this.rowCache = new Map(); // row number -> its element, while it stays in view
    this.zoom = {start: model.start, end: model.end}; // the time window the bars are drawn against (µs)
    this.collapseToBudget(ROW_BUDGET);
    this.build();
    this.renderAxis();
    this.recompute();
  }

  /** Show whole depth levels while they fit in `budget` rows; the parents on the last level shown
   * start collapsed. A trace within the budget opens fully expanded. */
  collapseToBudget(budget) {
    const {spans} = this.model;
    if (spans.length <= budget) return;
    const perDepth = [];
    for (const s of spans) perDepth[s.depth] = (perDepth[s.depth] || 0) + 1;
    let rows = 0;
    let depth = 0;
    while (depth < perDepth.length && rows + perDepth[depth] <= budget) rows += perDepth[depth++];
    const cut = Math.max(0, depth - 1);
    for (const s of spans) if (s.depth === cut && s.children.length) this.collapsed[s.index] = 1;
    this.autoCollapsed = true;
  }

  build() {
    const m = this.model;
    this.search = h('input', {type: 'search', placeholder: 'Find: name, service, tag=value',
      'aria-label': 'Find in trace', class: 'wf-search'});
    this.matchInfo = h('span', {class: 'wf-match-info', 'aria-live': 'polite'});
    let pending = 0;
    // Debounced: matching scans every span's tags, which is noticeable per keystroke at 100,000 spans.
    this.search.addEventListener('input', () => {
      clearTimeout(pending);
      pending = setTimeout(() => this.setSearch(this.search.value), m.spans.length > 5000 ? 200 : 0);
    });
    this.search.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        clearTimeout(pending);
        if (this.searchText !== this.search.value) this.setSearch(this.search.value);
        this.nextMatch(e.shiftKey ? -1 : 1);
      }
    });
    this.shownNote = h('span', {class: 'wf-shown', 'aria-live': 'polite'});
    const toolbar = h('div', {class: 'wf-toolbar'}, this.search, this.matchInfo,
      h('button', {type: 'button', onclick: () => this.nextMatch(-1), 'aria-label': 'Previous match'}, '↑'),
      h('button', {type: 'button', onclick: () => this.nextMatch(1), 'aria-label': 'Next match'}, '↓'),
      h('button', {type: 'button', onclick: () => this.collapseAll()}, 'Collapse all'),
      h('button', {type: 'button', onclick: () => this.expandAll()}, 'Expand all'),
      this.resetZoom = h('button', {type: 'button', disabled: true, onclick: () => this.setZoom(m.start, m.end)},
        'Reset zoom'), this.shownNote,
      h('span', {class: 'legend'}, h('span', {class: 'legend-critical'}), 'critical path',
        h('span', {class: 'legend-error'}), 'error'));
    this.minimap = h('canvas', {class: 'wf-minimap-canvas', height: 48, 'aria-hidden': 'true'});
    this.minimapWindow = h('div', {class: 'wf-minimap-window'});
    const minimap = h('div', {class: 'wf-minimap', title: 'Minimap: click or drag to scroll'},
      this.minimap, this.minimapWindow);
    this.bindMinimap(minimap);
    this.axis = h('div', {class: 'wf-axis', title: 'Drag across the time axis to zoom in'});
    this.bindZoom(this.axis);
    const header = h('div', {class: 'wf-header'},
      h('div', {class: 'wf-name', 'aria-hidden': 'true'}, 'Service · operation'), this.axis);
    this.spacer = h('div', {class: 'wf-spacer'});
    this.viewport = h('div', {class: 'wf-viewport', role: 'treegrid', tabindex: 0,
      'aria-label': `Trace waterfall, ${m.spans.length} spans`, 'aria-colcount': 2,
      'data-total-spans': m.spans.length}, this.spacer);
    this.viewport.addEventListener('scroll', () => this.schedule(false));
    this.viewport.addEventListener('keydown', (e) => this.onKey(e));
    this.viewport.addEventListener('click', (e) => this.onClick(e));
    this.el = h('div', {class: 'waterfall'}, toolbar, minimap, header, this.viewport);
    this.resizeObserver = new ResizeObserver(() => {
      this.timelineWidth = this.axis.clientWidth;
      this.drawMinimap();
      this.schedule();
    });
    this.resizeObserver.observe(this.viewport);
  }

  destroy() {
    this.resizeObserver.disconnect();
    cancelAnimationFrame(this.frame);
  }

  /** Rows in display order, skipping the subtrees of collapsed spans (order is depth-first). */
  recompute() {
    const {order, spans} = this.model;
    const rows = new Int32Array(order.length);
    let k = 0;
    for (let i = 0; i < order.length;) {
      const s = order[i];
      rows[k++] = s;
      i += this.collapsed[s] ? spans[s].size : 1;
    }
    this.rows = rows.subarray(0, k);
    this.focusRow = Math.min(this.focusRow, Math.max(0, k - 1));
    this.spacer.style.height = `${k * ROW_HEIGHT}px`;
    this.viewport.setAttribute('aria-rowcount', String(k));
    this.viewport.dataset.visibleRows = String(k);
    const total = spans.length;
    this.shownNote.textContent = k < total ? `${k.toLocaleString('en')} of ${total.toLocaleString('en')} spans shown` +
      `${this.autoCollapsed ? ' (large trace: deeper levels collapsed)' : ''}` : '';
    this.drawMinimap();
    this.schedule();
  }

  /** Draw on the next frame. `rowsChanged` (the default) means the rows' content changed (selection,
   * focus, search, zoom, collapse, width): they are rebuilt. A plain scroll keeps the rows still in view
   * and only builds the ones scrolling in, so a small scroll step touches a handful of elements. */
  schedule(rowsChanged = true) {
    if (rowsChanged) this.rowCache.clear();
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.renderRows(); });
  }

  renderRows() {
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    const nodes = [];
    const cache = new Map();
    for (let r = first; r < last; r++) {
      const el = this.rowCache.get(r) || this.row(r);
      cache.set(r, el);
      nodes.push(el);
    }
    this.rowCache = cache;
    const keep = new Set(nodes);
    for (const el of [...this.spacer.children]) if (!keep.has(el)) el.remove();
    // Insert the new rows where they belong, so the DOM order stays the row order (for screen readers).
    let prev = null;
    for (const el of nodes) {
      const at = prev ? prev.nextSibling : this.spacer.firstChild;
      if (el !== at) this.spacer.insertBefore(el, at);
      prev = el;
    }
    const active = this.rows.length ? `${this.idPrefix}-row-${this.rows[this.focusRow]}` : '';
    if (active) this.viewport.setAttribute('aria-activedescendant', active);
    const total = this.rows.length * ROW_HEIGHT || 1;
    this.minimapWindow.style.top = `${(top / total) * 100}%`;
    this.minimapWindow.style.height = `${Math.max(2, Math.min(100, (height / total) * 100))}%`;
    this.viewport.dataset.renderedRows = String(nodes.length);
  }

  row(r) {
    const m = this.model;
    const s = m.spans[this.rows[r]];
    const hasKids = s.children.length > 0;
    const collapsed = this.collapsed[s.index] === 1;
    const classes = ['wf-row'];
    if (s.error) classes.push('is-error');
    if (s.critical) classes.push('is-critical');
    if (s.index === this.selected) classes.push('is-selected');
    if (r === this.focusRow) classes.push('is-focused');
    if (this.matches && this.matches[s.index]) classes.push('is-match');
    const span = (this.zoom.end - this.zoom.start) || 1;
    const left = ((s.start - this.zoom.start) / span) * 100;
    const width = (s.duration / span) * 100;
    const color = serviceColor(s.service);
    const indent = Math.min(s.depth, MAX_INDENT_LEVELS) * 12;
    return h('div', {
      class: classes.join(' '), role: 'row', id: `${this.idPrefix}-row-${s.index}`, style: `top:${r * ROW_HEIGHT}px`,
      'aria-rowindex': r + 1, 'aria-level': s.depth + 1, 'aria-expanded': hasKids ? String(!collapsed) : null,
      'aria-selected': String(s.index === this.selected), dataset: {span: s.index, spanId: s.spanID,
        critical: String(s.critical)},
    },
    h('div', {class: 'wf-name', role: 'gridcell', style: `padding-left:${indent + 4}px`},
      hasKids ? h('button', {type: 'button', class: 'wf-toggle', tabindex: -1, dataset: {toggle: s.index},
        'aria-label': `${collapsed ? 'Expand' : 'Collapse'} ${s.name} (${s.size - 1} spans below)`},
      collapsed ? '▸' : '▾') : h('span', {class: 'wf-toggle-pad'}),
      h('span', {class: 'wf-svc-mark', style: `background:${color}`}),
      h('span', {class: 'wf-svc'}, s.service), ' ', h('span', {class: 'wf-op'}, s.name),
      collapsed ? h('span', {class: 'wf-hidden-count', title: `${s.size - 1} spans below, collapsed`},
        ` +${s.size - 1} span${s.size === 2 ? '' : 's'}`) : null,
      s.error ? h('span', {class: 'wf-err', 'aria-label': 'error'}, '!') : null,
      s.critical ? h('span', {class: 'visually-hidden'}, ' (critical path)') : null),
    h('div', {class: 'wf-timeline', role: 'gridcell'},
      h('div', {class: 'wf-bar', style: `left:${left}%;width:${width}%;background:${color}`}),
      this.durationLabel(s.duration, left, width)));
  }

  /** The duration label goes right of the bar, else left of it, else inside it: never cut off by the
   * timeline's edge, however narrow the column is (e.g. with the span detail panel open). */
  durationLabel(duration, left, width) {
    const text = fmtDuration(duration);
    const total = this.timelineWidth || 600;
    const labelPx = text.length * 7 + 8;
    const from = Math.max(0, left); const to = Math.min(100, left + width);
    let style; let cls = 'wf-dur';
    if ((to / 100) * total + labelPx <= total) style = `left:${to}%`;
    else if ((from / 100) * total >= labelPx) style = `right:${100 - from}%`;
    else { style = `right:${100 - to}%`; cls += ' wf-dur-inside'; }
    return h('span', {class: cls, style}, text);
  }

  renderAxis() {
    const {start, end} = this.zoom;
    this.axis.replaceChildren(...[0, 0.25, 0.5, 0.75, 1].map((f) => h('span', {class: 'wf-tick',
      style: `left:${f * 100}%`, 'aria-hidden': 'true'}, fmtDuration(start - this.model.start + (end - start) * f))));
  }

  /** Draw the bars against [start, end] µs (the whole trace when not zoomed). */
  setZoom(start, end) {
    this.zoom = {start, end};
    this.resetZoom.disabled = start <= this.model.start && end >= this.model.end;
    this.viewport.dataset.zoom = this.resetZoom.disabled ? '' : `${start - this.model.start}-${end - this.model.start}`;
    this.renderAxis();
    this.schedule();
  }

  bindZoom(axis) {
    const band = h('div', {class: 'wf-zoom-band', hidden: true});
    axis.append(band);
    let from = null;
    const frac = (e) => {
      const rect = axis.getBoundingClientRect();
      return Math.max(0, Math.min(1, (e.clientX - rect.left) / rect.width));
    };
    axis.addEventListener('pointerdown', (e) => {
      from = frac(e);
      axis.setPointerCapture(e.pointerId);
    });
    axis.addEventListener('pointermove', (e) => {
      if (from === null) return;
      const to = frac(e);
      Object.assign(band.style, {left: `${Math.min(from, to) * 100}%`, width: `${Math.abs(to - from) * 100}%`});
      band.hidden = false;
    });
    axis.addEventListener('pointerup', (e) => {
      if (from === null) return;
      const [a, b] = [from, frac(e)].sort((x, y) => x - y);
      from = null;
      band.hidden = true;
      // A click (no real drag) is not a zoom: it would select an empty window.
      if (b - a < 0.01) return;
      const {start, end} = this.zoom;
      this.setZoom(start + (end - start) * a, start + (end - start) * b);
    });
  }

  onClick(e) {
    const toggle = e.target.closest('[data-toggle]');
    if (toggle) { this.toggle(Number(toggle.dataset.toggle)); return; }
    const row = e.target.closest('.wf-row');
    if (!row) return;
    const idx = Number(row.dataset.span);
    this.focusRow = this.rowOf(idx);
    this.select(idx);
    this.viewport.focus({preventScroll: true});
  }

  onKey(e) {
    if (!this.rows.length) return;
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / ROW_HEIGHT) - 1);
    const s = this.model.spans[this.rows[this.focusRow]];
    const moves = {ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page};
    if (e.key in moves) this.moveFocus(this.focusRow + moves[e.key]);
    else if (e.key === 'Home') this.moveFocus(0);
    else if (e.key === 'End') this.moveFocus(this.rows.length - 1);
    else if (e.key === 'ArrowRight' && this.collapsed[s.index]) this.toggle(s.index);
    else if (e.key === 'ArrowLeft' && s.children.length && !this.collapsed[s.index]) this.toggle(s.index);
    else if (e.key === 'ArrowLeft' && s.parent >= 0) this.moveFocus(this.rowOf(s.parent));
    else if (e.key === 'Enter' || e.key === ' ') this.select(s.index);
    else return;
    e.preventDefault();
  }

  moveFocus(r) {
    this.focusRow = Math.max(0, Math.min(this.rows.length - 1, r));
    this.scrollToRow(this.focusRow);
    this.schedule();
  }

  rowOf(spanIndex) {
    return this.rows.indexOf(spanIndex);
  }

  scrollToRow(r) {
    const top = r * ROW_HEIGHT;
    const vp = this.viewport;
    if (top < vp.scrollTop) vp.scrollTop = top;
    else if (top + ROW_HEIGHT > vp.scrollTop + vp.clientHeight) vp.scrollTop = top - vp.clientHeight + 2 * ROW_HEIGHT;
  }

  select(spanIndex) {
    this.selected = spanIndex;
    this.schedule();
    this.onSelect(spanIndex);
  }

  toggle(spanIndex) {
    this.collapsed[spanIndex] ^= 1;
    this.recompute();
    this.focusRow = Math.max(0, this.rowOf(spanIndex));
  }

  collapseAll() {
    this.autoCollapsed = false;
    for (const s of this.model.spans) if (s.children.length) this.collapsed[s.index] = 1;
    this.recompute();
  }

  expandAll() {
    this.autoCollapsed = false;
    this.collapsed.fill(0);
    this.recompute();
  }

  /** Show a span: expand its collapsed ancestors, scroll to it and focus its row. */
  reveal(spanIndex) {
    const spans = this.model.spans;
    let changed = false;
    for (let p = spans[spanIndex].parent; p >= 0; p = spans[p].parent) {
      if (this.collapsed[p]) { this.collapsed[p] = 0; changed = true; }
    }
    if (changed) this.recompute();
    this.focusRow = this.rowOf(spanIndex);
    this.scrollToRow(this.focusRow);
    this.schedule();
  }

  setSearch(text) {
    this.searchText = text;
    const term = text.trim().toLowerCase();
    if (!term) {
      this.matches = null; this.matchList = []; this.matchInfo.textContent = '';
      this.schedule();
      return;
    }
    const matches = new Uint8Array(this.model.spans.length);
    const list = [];
    for (const i of this.model.order) {
      if (spanMatches(this.model.spans[i], term)) { matches[i] = 1; list.push(i); }
    }
    this.matches = matches;
    this.matchList = list;
    this.matchPos = -1;
    this.matchInfo.textContent = `${list.length} match${list.length === 1 ? '' : 'es'}`;
    this.viewport.dataset.matches = String(list.length);
    this.schedule();
  }

  nextMatch(step) {
    if (!this.matchList.length) return;
    const n = this.matchList.length;
    this.matchPos = ((this.matchPos + step) % n + n) % n;
    this.matchInfo.textContent = `${this.matchPos + 1} of ${n}`;
    const idx = this.matchList[this.matchPos];
    this.reveal(idx);
    this.select(idx);
  }

  drawMinimap() {
    const canvas = this.minimap;
    const width = Math.max(100, canvas.clientWidth || 800);
    if (canvas.width !== width) canvas.width = width;
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    const {spans, start, duration} = this.model;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const n = this.rows.length || 1;
    const rowH = canvas.height / n;
    const span = duration || 1;
    for (let r = 0; r < this.rows.length; r++) {
      const s = spans[this.rows[r]];
      ctx.fillStyle = s.error ? '#d62728' : serviceColor(s.service);
      ctx.fillRect(((s.start - start) / span) * width, r * rowH, Math.max(1, (s.duration / span) * width),
        Math.max(1, rowH));
    }
  }

  bindMinimap(el) {
    const scrollTo = (e) => {
      const rect = el.getBoundingClientRect();
      const f = Math.max(0, Math.min(1, (e.clientY - rect.top) / rect.height));
      this.viewport.scrollTop = f * this.rows.length * ROW_HEIGHT - this.viewport.clientHeight / 2;
    };
    el.addEventListener('pointerdown', (e) => {
      scrollTo(e);
      el.setPointerCapture(e.pointerId);
      const move = (ev) => scrollTo(ev);
      el.addEventListener('pointermove', move);
      el.addEventListener('pointerup', () => el.removeEventListener('pointermove', move), {once: true});
    });
  }
}

function spanMatches(s, term) {
  if (s.name.toLowerCase().includes(term) || s.service.toLowerCase().includes(term) || s.spanID === term) return true;
  for (const t of s.raw.tags || []) {
    if (`${t.key}=${t.value}`.toLowerCase().includes(term)) return true;
  }
  return false;
}
