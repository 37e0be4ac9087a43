// The theme toggle. Without a choice the page follows the system setting (prefers-color-scheme, in
// CSS); the toggle switches to the other theme and remembers it, and switching back to what the system
// prefers forgets the choice again, so the page follows the system from then on.
import {loadPlotly, plotlyTheme} from './util.js';

const KEY = 'spanlake.theme';
const system = window.matchMedia('(prefers-color-scheme: dark)');

export function currentTheme() {
  return document.documentElement.dataset.theme || (system.matches ? 'dark' : 'light');
}

function store(theme) {
  try {
    if (theme) localStorage.setItem(KEY, theme); else localStorage.removeItem(KEY);
  } catch { /* the choice then lasts for this page only */ }
}

/** Charts are drawn with the theme's colours: restyle those already on the page. */
async function restyleCharts() {
  const plots = document.querySelectorAll('.js-plotly-plot');
  if (!plots.length) return;
  const Plotly = await loadPlotly();
  const t = plotlyTheme();
  const update = {paper_bgcolor: t.paper_bgcolor, plot_bgcolor: t.plot_bgcolor, 'font.color': t.font.color};
  for (const axis of ['xaxis', 'yaxis']) {
    for (const [k, v] of Object.entries(t[axis])) update[`${axis}.${k}`] = v;
  }
  for (const el of plots) Plotly.relayout(el, update);
}

function sync(button) {
  const dark = currentTheme() === 'dark';
  button.setAttribute('aria-pressed', String(dark));
  button.textContent = dark ? '☾ Dark' : '☀ Light';
  button.title = `${dark ? 'Dark' : 'Light'} theme${document.documentElement.dataset.theme ? '' : ' (system setting)'}` +
    '; click to switch';
}

export function setupThemeToggle(button) {
  sync(button);
  button.addEventListener('click', () => {
    const next = currentTheme() === 'dark' ? 'light' : 'dark';
    const systemTheme = system.matches ? 'dark' : 'light';
    if (next === systemTheme) delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = next;
    store(next === systemTheme ? null : next);
    sync(button);
    restyleCharts();
  });
  system.addEventListener('change', () => { sync(button); restyleCharts(); });
}
