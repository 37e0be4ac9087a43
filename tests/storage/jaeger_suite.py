"""Jaeger's storage integration suite (fixtures/jaeger/storage-integration), loaded as Jaeger runs it.

Jaeger's fixtures are dated 2017-01-25/26; its harness moves them to two days ago / yesterday (UTC),
keeping the time of day, in the spans and in the query windows alike (``dates.go``, ``correctTime``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spanlake.storage.api import TraceQuery
from spanlake.storage.attributes import format_double
from spanlake.storage.schema import SPAN_SCHEMA
from tests.paths import FIXTURES, JAEGER_SUITE
from tests.storage.spans import NS_PER_DAY, trace_ids_of

FIXTURE_DAY = dt.date(2017, 1, 26)
MEMORY_STORE = FIXTURES / "jaeger" / "memory-store"



def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def day_shift_ns() -> int:
    """How far Jaeger's suite moves fixture times: 2017-01-26 -> yesterday, 2017-01-25 -> two days
    ago, time of day kept (both are the same whole number of days)."""
    return (_today() - dt.timedelta(days=1) - FIXTURE_DAY).days * NS_PER_DAY


def shift_dates(table: pa.Table) -> pa.Table:
    """The spans with every span and event timestamp moved by ``day_shift_ns()`` (Jaeger's dates.go)."""
    shift = day_shift_ns()
    for name in ("start_time_unix_nano", "end_time_unix_nano"):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pc.add(table.column(name), shift))
    events = [[{**event, "time_unix_nano": event["time_unix_nano"] + shift} for event in span_events]
              for span_events in table.column("events").to_pylist()]
    index = table.schema.get_field_index("events")
    return table.set_column(index, "events", pa.array(events, SPAN_SCHEMA.field("events").type))


def shift_query_time(text: str) -> int:
    """An RFC3339 time of ``queries.json`` with Jaeger's date replacement, as Unix nanoseconds."""
    yesterday = _today() - dt.timedelta(days=1)
    text = text.replace("2017-01-26", yesterday.isoformat())
    text = text.replace("2017-01-25", (yesterday - dt.timedelta(days=1)).isoformat())
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def decode_fixture(path: Path) -> pa.Table:
    # Imported here so this module (and the memory backend's other cases) loads before the OTLP
    # converter lands; the cases that need fixtures fail loudly until then.
    from spanlake.collector.formats.otlp import decode_otlp_json

    result = decode_otlp_json(path.read_bytes())
    assert result.rejected == 0, f"{path.name}: {result.message}"
    spans: pa.Table = result.spans
    return spans


def suite_trace(stem: str) -> pa.Table:
    """A trace of Jaeger's suite (``traces/<stem>.json``), date-shifted."""
    return shift_dates(decode_fixture(JAEGER_SUITE / "traces" / f"{stem}.json"))


@dataclass(frozen=True)
class QueryCase:
    caption: str
    query: TraceQuery
    expected: tuple[str, ...]  # fixture stems


def query_cases() -> list[QueryCase]:
    """The 25 cases of ``queries.json`` as ``TraceQuery``s (times shifted, durations in ns)."""
    raw = json.loads((JAEGER_SUITE / "queries.json").read_text())
    return [QueryCase(case["Caption"], _trace_query(case["Query"]), tuple(case["ExpectedFixtures"]))
            for case in raw]


def _trace_query(raw: Mapping[str, Any]) -> TraceQuery:
    # Go zero values mean "no filter"; Durations are time.Duration JSON, i.e. integer nanoseconds.
    return TraceQuery(
        service_name=raw["ServiceName"] or None,
        operation_name=raw["OperationName"] or None,
        attributes={key: tag_text(value) for key, value in (raw.get("Tags") or {}).items()},
        start_time_min_ns=shift_query_time(raw["StartTimeMin"]),
        start_time_max_ns=shift_query_time(raw["StartTimeMax"]),
        duration_min_ns=raw["DurationMin"] or None,
        duration_max_ns=raw["DurationMax"] or None,
        search_depth=raw["NumTraces"],
    )


def tag_text(value: Any) -> str:
    """A typed ``Tags`` value of HEAD's queries.json as the string a Jaeger client sends."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format_double(value)
    return str(value)


def expected_json(caption: str) -> dict[str, Any]:
    """``EXPECTED.json``'s resolution of a ``queries.json`` case: trace IDs and span counts."""
    resolved = json.loads((JAEGER_SUITE / "EXPECTED.json").read_text())
    cases = resolved["storage-integration (OTLP, jaeger@8498073f)"]
    [case] = [c for c in cases if c["file"] == "queries.json" and c["caption"] == caption]
    return dict(case)


def check_expected_resolution(case: QueryCase) -> None:
    """The traces a case expects, as loaded here, are those ``EXPECTED.json`` names, span for span."""
    resolved = expected_json(case.caption)["expected"]
    for stem, entry in zip(case.expected, resolved, strict=True):
        trace = suite_trace(stem)
        assert entry["fixture"] == stem
        assert sorted(t.hex() for t in trace_ids_of(trace)) == sorted(entry["trace_ids"])
        assert trace.num_rows == entry["spans"]
