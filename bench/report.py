"""The comparison table (Markdown) and chart (plotly HTML) of one benchmark run, with issue 6's bar."""

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
Check = Callable[[float, float | None], bool]


@dataclass
class Row:
    label: str
    value: Value
    bar: str = ""
    check: Check | None = None
    digits: int = 1


def at_most(limit: float, peer_factor: float | None = None) -> Check:
    """Pass when the value is <= limit and, if a peer factor is given, <= factor x the peer's value."""

    def check(ours: float, peer: float | None) -> bool:
        if ours > limit:
            return False
        return peer_factor is None or peer is None or ours <= peer_factor * peer

    return check


def ms(key: str, table: str = "by_id_ms") -> Value:
    return lambda r: getattr(r, table).get(key)


def mib(value: int | None) -> float | None:
    return value / (1 << 20) if value is not None else None


def rows() -> list[Row]:
    table = [
        Row(
            "ingest: spans per server CPU-second",
            lambda r: r.spans_per_cpu_s,
            ">= 50,000",
            lambda s, p: s >= 50_000,
            0,
        ),
        Row(
            "ingest: server CPU-s per million spans",
            lambda r: r.ingest_cpu_s and r.ingest_cpu_s / r.spans * 1e6,
            digits=2,
        ),
        Row("ingest: spans/s (wall)", lambda r: r.spans_per_s, digits=0),
        Row(
            "storage: bytes per span (after compaction)",
            lambda r: r.bytes_per_span,
            "<= 40 and <= 0.7x peer",
            at_most(40, 0.7),
        ),
        Row(
            "trace by ID, no time range: hit p50 (ms)",
            ms("hit_p50"),
            "<= 10 and <= 0.5x peer",
            at_most(10, 0.5),
        ),
        Row(
            "trace by ID, no time range: hit p99 (ms)",
            ms("hit_p99"),
            "<= 50 and <= 0.5x peer",
            at_most(50, 0.5),
        ),
        Row(
            "trace by ID, no time range: miss p50 (ms)",
            ms("miss_p50"),
            "<= 10 and <= 0.5x peer",
            at_most(10, 0.5),
        ),
        Row(
            "trace by ID, no time range: miss p99 (ms)",
            ms("miss_p99"),
            "<= 50 and <= 0.5x peer",
            at_most(50, 0.5),
        ),
    ]
    for key, label in measure.SEARCHES:
        table.append(
            Row(f"search p50 (ms): {label}", ms(key, "searches_ms"), "<= 300 and <= peer", at_most(300, 1.0))
        )
    table += [
        Row(
            "peak server RSS during ingest (MiB)",
            lambda r: mib(r.ingest_peak_rss),
            "<= 1024",
            lambda s, p: s <= 1024,
            0,
        ),
        Row(
            "peak server RSS during searches (MiB)",
            lambda r: mib(r.search_peak_rss),
            "<= 2048",
            lambda s, p: s <= 2048,
            0,
        ),
    ]
    return table


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
        verdict = "-"
        if row.check is not None:
            verdict = "not measured" if ours is None else ("pass" if row.check(ours, peer) else "FAIL")
        lines.append(
            f"| {row.label} | {number(ours, row.digits)} | {number(peer, row.digits)} | {ratio} | "
            f"{row.bar or '-'} | {verdict} |"
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
    """Grouped bars per measurement, spanlake beside the peer (plotly, loaded from its CDN)."""
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
    fig.write_html(path, include_plotlyjs="cdn")
