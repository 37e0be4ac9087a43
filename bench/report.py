"""The comparison table (Markdown) and chart (plotly HTML) of one benchmark run, with issue 11's bar.

Issue 11's bar is in ratios to the ClickHouse peer (absolute times move up to 2x with the machine's
load): attribute search <= 300 ms and <= 0.5x, percentiles SQL <= peer, slower-than-p99 <= 300 ms and
<= peer, no-match <= peer, trace by ID hit p50 and p99 <= 0.12x, bytes per span <= 0.6x, ingest CPU
per million spans <= 1.3x, RSS during searches <= 1 GiB. Where issue 11 is silent the row keeps issue
6's bar (service + operation and TraceQL searches <= 300 ms and <= peer, trace-by-ID misses, RSS
during ingest <= 1 GiB).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench import measure

if TYPE_CHECKING:
    from bench.run import Run

GIB = 1 << 30
Value = Callable[[measure.Result], float | None]
# A bar's verdict from spanlake's value and the peer's (None when the peer was not measured): True
# passes, False fails, None means the bar cannot be judged (it compares with a peer that has no value).
Check = Callable[[float, float | None], bool | None]


@dataclass
class Row:
    label: str
    value: Value
    bar: str = ""
    check: Check | None = None
    digits: int = 1


def at_most(limit: float | None, peer_factor: float | None = None) -> Check:
    """Pass when the value is <= ``limit`` (if given) and <= ``peer_factor`` x the peer's value (if
    given). A bar that compares with the peer cannot pass without the peer's number."""

    def check(ours: float, peer: float | None) -> bool | None:
        if limit is not None and ours > limit:
            return False
        if peer_factor is None:
            return True
        if peer is None:
            return None
        return ours <= peer_factor * peer

    return check


def bar_text(limit: float | None, peer_factor: float | None) -> str:
    parts = [f"<= {limit:,g}"] if limit is not None else []
    if peer_factor is not None:
        parts.append("<= peer" if peer_factor == 1.0 else f"<= {peer_factor:g}x peer")
    return " and ".join(parts)


def bar(label: str, value: Value, limit: float | None, peer_factor: float | None = None,
        digits: int = 1) -> Row:  # fmt: skip
    return Row(label, value, bar_text(limit, peer_factor), at_most(limit, peer_factor), digits)


def ms(key: str, table: str = "by_id_ms") -> Value:
    return lambda r: getattr(r, table).get(key)


def mib(value: int | None) -> float | None:
    return value / (1 << 20) if value is not None else None


# Issue 11's bar for each search (ms, peer factor); issue 6's (<= 300 ms and <= peer) for the others.
SEARCH_BARS: dict[str, tuple[float | None, float | None]] = {
    "attribute": (300, 0.5),
    "percentiles": (None, 1.0),
    "slow": (300, 1.0),
    "no_match": (None, 1.0),
}


def rows() -> list[Row]:
    table = [
        # Issue 11 bars ingest by CPU per million spans against the peer, which replaces issue 6's
        # absolute rate (>= 50,000 spans per CPU-second); the rate stays as information.
        Row("ingest: spans per server CPU-second", lambda r: r.spans_per_cpu_s, digits=0),
        bar(
            "ingest: server CPU-s per million spans",
            lambda r: r.ingest_cpu_s and r.ingest_cpu_s / r.spans * 1e6,
            None,
            1.3,
            digits=2,
        ),
        Row("ingest: spans/s (wall)", lambda r: r.spans_per_s, digits=0),
        bar("storage: bytes per span (after compaction)", lambda r: r.bytes_per_span, None, 0.6),
        bar("trace by ID, no time range: hit p50 (ms)", ms("hit_p50"), None, 0.12),
        bar("trace by ID, no time range: hit p99 (ms)", ms("hit_p99"), None, 0.12),
        # Issue 11 is silent on misses: issue 6's bar.
        bar("trace by ID, no time range: miss p50 (ms)", ms("miss_p50"), 10, 0.5),
        bar("trace by ID, no time range: miss p99 (ms)", ms("miss_p99"), 50, 0.5),
    ]
    for key, label in measure.SEARCHES:
        limit, factor = SEARCH_BARS.get(key, (300, 1.0))
        table.append(bar(f"search p50 (ms): {label}", ms(key, "searches_ms"), limit, factor))
    table += [
        bar("peak server RSS during ingest (MiB)", lambda r: mib(r.ingest_peak_rss), 1024, digits=0),
        bar("peak server RSS during searches (MiB)", lambda r: mib(r.search_peak_rss), 1024, digits=0),
    ]
    return table


def verdict(row: Row, ours: float | None, peer: float | None) -> str:
    if row.check is None:
        return "-"
    if ours is None:
        return "not measured"
    passed = row.check(ours, peer)
    return "no peer value" if passed is None else ("pass" if passed else "FAIL")


def number(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    return f"{value:,.{digits}f}"


def value_of(row: Row, result: measure.Result | None) -> float | None:
    if result is None:
        return None
    try:
        value = row.value(result)
    except (TypeError, ZeroDivisionError):
        return None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def table(run: Run) -> list[str]:
    lines = [
        "| what | spanlake | ClickHouse peer | ratio (spanlake / peer) | bar | pass |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in rows():
        ours, peer = value_of(row, run.spanlake), value_of(row, run.peer)
        ratio = f"{ours / peer:.2f}" if ours is not None and peer else "-"
        lines.append(
            f"| {row.label} | {number(ours, row.digits)} | {number(peer, row.digits)} | {ratio} | "
            f"{row.bar or '-'} | {verdict(row, ours, peer)} |"
        )
    return lines


def answers(run: Run) -> list[str]:
    """What each engine returned, beside what the generated data says it must: a speed without the
    right answer means nothing."""
    q = run.manifest["searches"]
    assert isinstance(q, dict)
    expected = {
        "service_operation": min(20, int(q["recent_traces"])),
        "attribute": min(20, int(q["attr_traces"])),
        "no_match": 0,
        "slow": min(20, int(q["slow_traces"])),
        "traceql_service_name": min(20, int(q["recent_traces"])),
        "traceql_attribute": min(20, int(q["attr_traces"])),
        "traceql_duration": "up to 20",
        "traceql_structural": "up to 20 (not asked of the peer)",
        "traceql_rate": "one series per service",
    }
    lines = ["| answer | spanlake | ClickHouse peer | expected |", "|---|---:|---:|---:|"]
    found = [(r.searches_found if r else {}) for r in (run.spanlake, run.peer)]
    by_id = [
        (str(r.by_id_found) if r and r.by_id_found is not None else "-") for r in (run.spanlake, run.peer)
    ]
    lines.append(f"| existing trace IDs returned with all 10 spans | {by_id[0]} | {by_id[1]} | 100 |")
    for key, label in measure.SEARCHES:
        want = str(expected[key]) if key in expected else "one row per (service, operation)"
        got = [str(f.get(key, "-")) for f in found]
        lines.append(f"| {label}: traces (rows for SQL) | {got[0]} | {got[1]} | {want} |")
    return lines


def markdown(run: Run) -> str:
    m = run.manifest
    out = [
        f"# spanlake vs ClickHouse: {int(str(m['spans'])):,} spans",
        "",
        f"Command: `{run.command}` (started {run.started}, took {run.seconds:.0f} s)",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in run.machine.items()),
        "",
        "Versions: " + "; ".join(r.version for r in (run.spanlake, run.peer) if r is not None),
        "",
        f"Data: {m['spans']:,} spans, {m['traces']:,} traces, {m['requests']:,} OTLP requests "
        f"of 1,000 spans, seed {m['seed']}, generated in {m['generate_seconds']} s. "
        "Floor: parsing the same requests with "
        f"`ExportTraceServiceRequest.FromString` costs {run.floor_cpu_s_per_m:.2f} CPU-s per million spans.",
        "",
        *table(run),
        "",
        *answers(run),
        "",
        "Notes:",
    ]
    for result in (run.spanlake, run.peer):
        if result is not None:
            out += [f"- {result.engine}: {note}" for note in result.notes]
            extras = ", ".join(f"{k} {v:,.2f}" for k, v in sorted(result.extra.items()))
            if extras:
                out.append(f"- {result.engine} details: {extras}")
    return "\n".join(out) + "\n"


def chart(run: Run, path: Path) -> None:
    """Grouped bars per measurement, spanlake beside the peer; plotly.js is the installed package's,
    written once as ``plotly.min.js`` beside the HTML (no CDN: the chart opens offline)."""
    from plotly.subplots import make_subplots

    panels = [
        ("trace by ID (ms)", [r for r in rows() if r.label.startswith("trace by ID")]),
        ("searches p50 (ms)", [r for r in rows() if r.label.startswith("search p50")]),
        ("ingest and storage", [r for r in rows() if r.label.startswith(("ingest: spans per", "storage"))]),
        ("peak RSS (MiB)", [r for r in rows() if r.label.startswith("peak")]),
    ]
    fig = make_subplots(rows=len(panels), cols=1, subplot_titles=[title for title, _ in panels])
    for index, (_, panel) in enumerate(panels, start=1):
        labels = [row.label.split(": ", 1)[-1] for row in panel]
        for name, result, color in (
            ("spanlake", run.spanlake, "#1f77b4"),
            ("ClickHouse", run.peer, "#ff7f0e"),
        ):
            values = [value_of(row, result) for row in panel]
            fig.add_bar(
                x=labels, y=values, name=name, marker_color=color, showlegend=index == 1, row=index, col=1
            )
    fig.update_layout(
        title=f"spanlake vs ClickHouse, {run.manifest['spans']:,} spans ({run.started})",
        barmode="group",
        height=400 * len(panels),
    )
    fig.write_html(path, include_plotlyjs="directory")


def write_plotly_js(directory: Path) -> None:
    """``plotly.min.js`` from the installed plotly package, beside the charts that load it. Not
    committed (4.8 MB): every benchmark run writes it, and ``make bench-charts`` does for a fresh
    clone's committed charts."""
    from plotly.offline import get_plotlyjs

    (directory / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
