"""The scaling table (Markdown) and chart (plotly HTML): each cost per size, with issue 11's targets at
100M spans (trace by ID p50 <= 15 ms with no time range, service + operation search <= 500 ms, restart
to ready <= 10 s, server RSS <= 2 GiB)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench import measure
from bench.report import Row, Value, at_most, mib, ms, number, value_of, verdict

if TYPE_CHECKING:
    from bench.scaling import Point, Scaling

TARGET_SPANS = 100_000_000
RESTART = "restart to ready (s): start `spanlake serve`, first trace by ID"
SERVING = "restart: of which until its ports answer (s)"
PEER_HAS_NO = {RESTART, SERVING}  # measures with no equivalent on the peer: "-" rather than "not measured"


@dataclass
class Measure(Row):
    """A row of the scaling table; ``limit`` is issue 11's target at 100M spans, where it sets one."""

    limit: float | None = None


def measured(label: str, value: Value, limit: float | None = None, digits: int = 1) -> Measure:
    if limit is None:
        return Measure(label, value, digits=digits)
    return Measure(label, value, f"<= {limit:,g}", at_most(limit), digits, limit)


def measures() -> list[Measure]:
    """What is reported per size, in table order."""
    rows = [
        measured(
            "ingest: server CPU-s per million spans",
            lambda r: r.ingest_cpu_s and r.ingest_cpu_s / r.spans * 1e6,
            digits=2,
        ),
        measured("storage: bytes per span (after compaction)", lambda r: r.bytes_per_span),
        measured("trace by ID, no time range: hit p50 (ms)", ms("hit_p50"), 15),
        measured("trace by ID, no time range: hit p99 (ms)", ms("hit_p99")),
        # A speed without the right answer means nothing: of the 100 existing IDs looked up.
        measured("trace by ID: traces returned whole (of 100)", lambda r: r.by_id_found, digits=0),
    ]
    for key, label in measure.SEARCHES:
        limit = 500 if key == "service_operation" else None
        rows.append(measured(f"search p50 (ms): {label}", ms(key, "searches_ms"), limit))
    rows += [
        measured("peak server RSS during ingest (MiB)", lambda r: mib(r.ingest_peak_rss), 2048, 0),
        measured("peak server RSS during searches (MiB)", lambda r: mib(r.search_peak_rss), 2048, 0),
        measured(RESTART, lambda r: r.extra.get("restart_to_ready_s"), 10, 2),
        measured(SERVING, lambda r: r.extra.get("restart_serving_s"), digits=2),
    ]
    return rows


def size_name(spans: int) -> str:
    """1000000 -> "1M", 200000 -> "200k", 12345 -> "12,345"."""
    for unit, name in ((1_000_000, "M"), (1_000, "k")):
        if spans >= unit and spans % unit == 0:
            return f"{spans // unit:,}{name}"
    return f"{spans:,}"


def columns(scaling: Scaling) -> list[tuple[Point, str]]:
    """(point, engine) per column: spanlake then the peer at each size, where each was asked to run."""
    out: list[tuple[Point, str]] = []
    for point in scaling.points:
        if point.spans in scaling.sizes:
            out.append((point, "spanlake"))
        if point.spans in scaling.peer_sizes:
            out.append((point, "peer"))
    return out


def cell(row: Row, point: Point, engine: str) -> str:
    if engine == "peer" and row.label in PEER_HAS_NO:
        return "-"
    return number(value_of(row, getattr(point, engine)), row.digits)


def target_verdict(row: Row, scaling: Scaling) -> str:
    if row.check is None:
        return "-"
    at_target = next((p for p in scaling.points if p.spans == TARGET_SPANS), None)
    if at_target is None or at_target.spanlake is None:
        return f"not run at {size_name(TARGET_SPANS)}"
    return verdict(row, value_of(row, at_target.spanlake), None)


def table(scaling: Scaling) -> list[str]:
    cols = columns(scaling)
    head = [f"{size_name(p.spans)} {'spanlake' if e == 'spanlake' else 'peer'}" for p, e in cols]
    target_head = f"target at {size_name(TARGET_SPANS)}"
    lines = [
        "| what | " + " | ".join(head) + f" | {target_head} | spanlake at {size_name(TARGET_SPANS)} |",
        "|---|" + "---:|" * len(cols) + "---|---|",
    ]
    for row in measures():
        cells = [cell(row, p, e) for p, e in cols] + [row.bar or "-", target_verdict(row, scaling)]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    return lines


def runs(scaling: Scaling) -> list[str]:
    """Per size: how long each step took and what the machine was doing, for judging the numbers."""
    lines = [
        "| size | generate (s) | peer (s) | spanlake (s) | spans acknowledged by spanlake | "
        "load average at start | disk free at start (GiB) |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for p in scaling.points:
        acked = f"{p.spanlake.spans:,}" if p.spanlake is not None else "-"
        s = {k: f"{v:,.0f}" for k, v in p.seconds.items()}
        lines.append(
            f"| {p.spans:,} | {s.get('generate', '-')} | {s.get('peer', '-')} | {s.get('spanlake', '-')} "
            f"| {acked} | {p.load_average} | {p.disk_free_gib:,.1f} |"
        )
    return lines


def markdown(scaling: Scaling) -> str:
    sizes = ", ".join(size_name(s) for s in scaling.sizes) or "none"
    peer_sizes = ", ".join(size_name(s) for s in scaling.peer_sizes) or "none"
    status = "complete" if scaling.complete else "PARTIAL (the run stopped or is still running)"
    out = [
        "# How cost grows: spanlake at " + sizes + f"; ClickHouse peer at {peer_sizes}",
        "",
        f"Command: `{scaling.command}` (started {scaling.started}, {scaling.seconds:.0f} s so far; {status})",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in scaling.machine.items()),
        "",
        "Each size is generated afresh (seed and shape as `make bench`), ingested over OTLP gRPC, "
        "compacted and queried like `python -m bench.run`; the restart time is a separate start of "
        "`spanlake serve` on the compacted store, until its first trace-by-ID lookup returns (the peer "
        "has no equivalent: -).",
        "",
        *table(scaling),
        "",
        *runs(scaling),
        "",
        "Notes:",
    ]
    for point in scaling.points:
        if point.skipped:
            out.append(f"- {size_name(point.spans)}: {point.skipped}")
        for result in (point.spanlake, point.peer):
            if result is not None:
                out += [f"- {size_name(point.spans)} {result.engine}: {n}" for n in result.notes]
    return "\n".join(out) + "\n"


def panel_title(label: str, width: int = 48) -> str:
    """A row label short enough for a third of the page: "search p50 (ms): x" -> "p50 ms: x"."""
    title = label.replace("search p50 (ms): ", "search p50 ms: ").split(": start `")[0]
    return title if len(title) <= width else title[: width - 1] + "…"


def chart(scaling: Scaling, path: Path) -> None:
    """One panel per measure, spans on a log x axis, a line per engine, the 100M target dotted.
    plotly.js is the installed package's, written once as ``plotly.min.js`` beside the HTML."""
    from plotly.subplots import make_subplots

    rows = measures()
    per_row = 3
    fig = make_subplots(
        rows=math.ceil(len(rows) / per_row),
        cols=per_row,
        subplot_titles=[panel_title(row.label) for row in rows],
        vertical_spacing=0.06,
    )
    for index, row in enumerate(rows):
        at = {"row": index // per_row + 1, "col": index % per_row + 1}
        for engine, name, color in (("spanlake", "spanlake", "#1f77b4"), ("peer", "ClickHouse", "#ff7f0e")):
            if engine == "peer" and row.label in PEER_HAS_NO:
                continue
            points = [p for p in scaling.points if getattr(p, engine) is not None]
            fig.add_scatter(
                x=[p.spans for p in points],
                y=[value_of(row, getattr(p, engine)) for p in points],
                name=name,
                mode="lines+markers",
                line={"color": color},
                legendgroup=name,
                showlegend=index == 0,
                **at,
            )
        if row.limit is not None:
            fig.add_hline(
                y=row.limit,
                line={"dash": "dot", "color": "#2ca02c"},
                annotation_text=f"target at {size_name(TARGET_SPANS)}: {row.bar}",
                **at,
            )
    fig.update_xaxes(type="log", title_text="spans")
    fig.update_annotations(font_size=12)
    fig.update_layout(
        title=f"How cost grows with the data ({scaling.started})",
        height=320 * math.ceil(len(rows) / per_row),
    )
    fig.write_html(path, include_plotlyjs="directory")
