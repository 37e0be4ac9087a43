// Flame graph of one trace on a canvas: x = time, one band per depth, click a box to select the span.
import {fmtDuration, h, serviceColor} from './util.js';

const BAND = 18;

export function flameGraph(model, onSelect) {
  const depthCap = Math.min(model.maxDepth + 1, 400);
  const canvas = h('canvas', {class: 'flame-canvas', height: depthCap * BAND,
    role: 'img', 'aria-label': `Flame graph of ${model.spans.length} spans, ${model.maxDepth + 1} levels deep`});
  const tip = h('div', {class: 'flame-tip', hidden: true});
  const wrap = h('div', {class: 'flame'}, canvas, tip);
  const byDepth = Array.from({length: depthCap}, () => []);
  for (const s of model.spans) if (s.depth < depthCap) byDepth[s.depth].push(s);
  // Concurrent siblings overlap on one band: draw longer boxes first so shorter ones stay visible.
  for (const list of byDepth) list.sort((a, b) => b.duration - a.duration);
  const span = model.duration || 1;
  const draw = () => {
    const width = Math.max(400, wrap.clientWidth - 2);
    canvas.width = width;
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    for (let d = 0; d < depthCap; d++) {
      for (const s of byDepth[d]) {
        const x = ((s.start - model.start) / span) * width;
        const w = Math.max(1, (s.duration / span) * width);
        ctx.fillStyle = s.error ? '#d62728' : serviceColor(s.service);
        ctx.fillRect(x, d * BAND, w, BAND - 1);
        if (w > 40) {
          ctx.save();
          ctx.beginPath(); ctx.rect(x, d * BAND, w, BAND); ctx.clip();
          ctx.fillStyle = '#fff';
          ctx.fillText(`${s.name} ${fmtDuration(s.duration)}`, x + 3, d * BAND + BAND / 2);
          ctx.restore();
        }
      }
    }
  };
  const hit = (e) => {
    const rect = canvas.getBoundingClientRect();
    const d = Math.floor((e.clientY - rect.top) / BAND);
    const t = model.start + ((e.clientX - rect.left) / rect.width) * span;
    const list = byDepth[d] || [];
    // The shortest box under the pointer wins, so a tiny span on top of a long one stays clickable.
    let best = null;
    for (const s of list) if (s.start <= t && t <= s.end && (!best || s.duration < best.duration)) best = s;
    return best;
  };
  canvas.addEventListener('mousemove', (e) => {
    const s = hit(e);
    tip.hidden = !s;
    if (s) {
      tip.textContent = `${s.service}: ${s.name} · ${fmtDuration(s.duration)} (self ${fmtDuration(s.selfTime)})`;
      tip.style.left = `${e.offsetX + 12}px`;
      tip.style.top = `${e.offsetY + 12}px`;
    }
  });
  canvas.addEventListener('mouseleave', () => { tip.hidden = true; });
  canvas.addEventListener('click', (e) => { const s = hit(e); if (s) onSelect(s.index); });
  requestAnimationFrame(draw);
  return wrap;
}
