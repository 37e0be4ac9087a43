// SQL console (/sql): editor, the `spans` schema beside it, example queries, a results table and a
// plotly chart builder. The query text is kept in the URL so a console state can be shared.
import {runSql} from './api.js';
import {errorBox, h, loadPlotly, themedLayout} from './util.js';

const EXAMPLES = [
  ['Spans per service', 'SELECT service_name, count(*) AS spans, avg(duration_ms) AS avg_ms\nFROM spans\n' +
    'GROUP BY service_name\nORDER BY spans DESC'],
  ['Error rate per service', "SELECT service_name, count(*) AS span_count,\n" +
    "  count(*) FILTER (WHERE status_name = 'error') AS errors,\n  round(errors / span_count, 4) AS error_rate\n" +
    'FROM spans\nGROUP BY service_name\nORDER BY error_rate DESC'],
  ['p95 by operation', 'SELECT service_name, name, count(*) AS n,\n  quantile_cont(duration_ms, 0.95) AS p95_ms\n' +
    'FROM spans\nGROUP BY ALL\nORDER BY p95_ms DESC\nLIMIT 20'],
  ['Spans per minute', "SELECT time_bucket(INTERVAL '1 minute', CAST(start_time AS TIMESTAMP)) AS minute,\n" +
    '  count(*) AS spans\nFROM spans\nGROUP BY minute\nORDER BY minute'],
  ['HTTP status codes', "SELECT attr(span_attributes, 'http.status_code') AS status, count(*) AS spans\n" +
    "FROM spans\nWHERE has_attr(span_attributes, 'http.status_code')\nGROUP BY status\nORDER BY spans DESC"],
  ['Duration histogram', 'SELECT duration_ms FROM spans\nLIMIT 5000'],
  ['Slowest traces', 'SELECT trace_id, root_service_name, root_span_name, duration_ms, span_count\n' +
    'FROM traces\nORDER BY duration_ms DESC\nLIMIT 20'],
];
// The views and helpers of docs/sql.md, listed beside the editor.
const VIEWS = ['spans', 'traces', 'events', 'links'];
const HELPERS = ['attr(attrs, key)', 'attr_type(attrs, key)', 'has_attr(attrs, key)', 'attr_str(attrs, key)',
  'attr_int(attrs, key)', 'attr_double(attrs, key)', 'attr_bool(attrs, key)', 'attr_bytes(attrs, key)'];
const SHOW_ROWS = 1000;

async function describe(view) {
  try {
    const res = await runSql(`DESCRIBE ${view}`);
    const nameCol = res.columns.indexOf('column_name');
    const typeCol = res.columns.indexOf('column_type');
    return h('ul', {class: 'schema'}, res.rows.map((r) =>
      h('li', {}, h('code', {}, r[nameCol]), ' ', h('span', {class: 'muted'}, r[typeCol]))));
  } catch (err) {
    return errorBox(err.message);
  }
}

async function loadSchema(el) {
  // One view at a time: the schema must not use up the server's concurrent-query slots.
  const lists = [];
  for (const view of VIEWS) lists.push(await describe(view));
  el.replaceChildren(h('h2', {}, 'Views'),
    ...VIEWS.map((v, i) => h('details', {open: i === 0}, h('summary', {}, h('code', {}, v)), lists[i])),
    h('h2', {}, 'Attribute helpers'),
    h('ul', {class: 'schema'}, HELPERS.map((x) => h('li', {}, h('code', {}, x)))));
}

// Longer cells are cut at this many characters in the table; the full value is the cell's tooltip.
const CELL_CHARS = 80;

function textCell(text, cls) {
  // CSS truncates to the column width as well; the title carries the full value for both cases.
  return h('td', {class: cls, title: text.length > 20 ? text : undefined},
    text.length > CELL_CHARS ? `${text.slice(0, CELL_CHARS)}…` : text);
}

function cell(v, column) {
  if (v === null || v === undefined) return h('td', {class: 'null'}, 'NULL');
  // Trace IDs link to their trace, so a query result is a starting point for investigation.
  if (/trace_id$/.test(column) && typeof v === 'string' && /^[0-9a-f]{16,32}$/.test(v)) {
    return h('td', {}, h('a', {href: `/trace/${v}`, class: 'mono'}, v));
  }
  if (typeof v === 'object') return textCell(JSON.stringify(v));
  return textCell(String(v), typeof v === 'number' ? 'num' : undefined);
}

function resultTable(res) {
  const rows = res.rows.slice(0, SHOW_ROWS);
  // The table scrolls inside its own box, both ways: a wide SELECT * must not widen the page.
  return h('div', {class: 'table-scroll sql-scroll', tabindex: 0, role: 'region', 'aria-label': 'Result rows'},
    h('table', {class: 'data sql-results'},
    h('caption', {}, `${res.rows.length} rows${res.truncated ? ' (truncated by the server)' : ''}` +
      `${res.rows.length > SHOW_ROWS ? `, first ${SHOW_ROWS} shown` : ''} in ${Number(res.elapsed_ms).toFixed(1)} ms`),
    h('thead', {}, h('tr', {}, res.columns.map((c) => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((v, i) => cell(v, res.columns[i])))))));
}

function chartBuilder(res) {
  const opts = (sel) => res.columns.map((c, i) => h('option', {value: i, selected: i === sel}, c));
  const numeric = res.columns.map((_, i) => res.rows.some((r) => typeof r[i] === 'number'));
  const firstNum = numeric.indexOf(true);
  const type = h('select', {name: 'type'}, ['bar', 'line', 'scatter', 'histogram'].map((t) =>
    h('option', {value: t}, t)));
  const x = h('select', {name: 'x'}, opts(0));
  const y = h('select', {name: 'y'}, opts(firstNum >= 0 ? firstNum : Math.min(1, res.columns.length - 1)));
  const plot = h('div', {class: 'chart', role: 'img', 'aria-label': 'Chart of the query result'});
  const draw = async () => {
    const Plotly = await loadPlotly();
    const xs = res.rows.map((r) => r[Number(x.value)]);
    const ys = res.rows.map((r) => r[Number(y.value)]);
    const data = type.value === 'histogram' ? [{type: 'histogram', x: xs}]
      : [{type: type.value === 'bar' ? 'bar' : 'scatter', mode: type.value === 'line' ? 'lines+markers' : 'markers',
        x: xs, y: ys}];
    await Plotly.newPlot(plot, data, themedLayout({margin: {l: 60, r: 10, t: 10, b: 60}, height: 320,
      xaxis: {title: {text: res.columns[Number(x.value)]}},
      yaxis: {title: {text: type.value === 'histogram' ? 'count' : res.columns[Number(y.value)]}}}),
    {displaylogo: false, responsive: true});
    plot.dataset.drawn = type.value;
  };
  const form = h('form', {class: 'chart-form', 'aria-label': 'Chart builder'},
    h('label', {}, 'Chart ', type), h('label', {}, ' x ', x), h('label', {}, ' y ', y),
    h('button', {type: 'submit'}, 'Draw chart'));
  form.addEventListener('submit', (e) => { e.preventDefault(); draw().catch((err) => plot.replaceChildren(errorBox(err.message))); });
  return h('section', {class: 'chart-builder', 'aria-label': 'Chart'}, form, plot);
}

export function render(root, _params, query) {
  const editor = h('textarea', {id: 'sql-editor', class: 'sql-editor', spellcheck: 'false', rows: 10,
    'aria-label': 'SQL query (Ctrl+Enter runs it)'});
  editor.value = query.get('q') || EXAMPLES[0][1];
  const output = h('section', {class: 'sql-output', 'aria-live': 'polite', 'aria-label': 'Query result'});
  const run = async () => {
    const q = editor.value;
    const next = new URLSearchParams({q});
    history.replaceState(null, '', `/sql?${next}`);
    output.replaceChildren(h('p', {class: 'muted'}, 'Running…'));
    output.dataset.state = 'running';
    try {
      const res = await runSql(q);
      output.replaceChildren(resultTable(res));
      if (res.rows.length && res.columns.length) output.append(chartBuilder(res));
      output.dataset.state = 'done';
    } catch (err) {
      output.replaceChildren(errorBox(err.message));
      output.dataset.state = 'error';
    }
  };
  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });
  const examples = h('div', {class: 'examples'}, h('span', {}, 'Examples: '), EXAMPLES.map(([label, sql]) =>
    h('button', {type: 'button', onclick: () => { editor.value = sql; editor.focus(); }}, label)));
  const schema = h('aside', {class: 'sql-schema', 'aria-label': 'Views and helpers'},
    h('p', {class: 'muted'}, 'Loading schema…'));
  root.replaceChildren(h('div', {class: 'sql-page'},
    h('div', {class: 'sql-main'}, h('h1', {}, 'SQL'), examples, editor,
      h('div', {class: 'toolbar'}, h('button', {type: 'button', class: 'primary', onclick: run}, 'Run'),
        h('span', {class: 'muted'}, ' Ctrl+Enter')), output),
    schema));
  loadSchema(schema);
  if (query.get('q')) run();
}
