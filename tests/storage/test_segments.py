"""The segment footer is a typed, versioned description; one this spanlake cannot read is named."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from spanlake.storage.api import TraceQuery
from spanlake.storage.location import local_location
from spanlake.storage.schema import FORMAT_VERSION
from spanlake.storage.segments import META_KEY, Segment, SegmentFormatError
from spanlake.storage.segments import open_segment as _open_segment
from spanlake.storage.store import open_store
from tests.storage.test_store import _spans, list_segment_paths


def open_segment(path: Path) -> Segment | None:
    return _open_segment(local_location(path.parent), str(path))


def _one_segment(tmp_path: Path) -> Path:
    store = open_store(tmp_path, flush_interval_s=3600)
    store.write(_spans(traces=3))
    store.flush()
    store.close()
    (path,) = list_segment_paths(tmp_path)
    return path


def _rewrite_footer(path: Path, change) -> None:
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[META_KEY])
    change(meta)
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), path)


def test_a_flushed_segment_describes_itself_with_the_current_format_version(tmp_path: Path) -> None:
    segment = open_segment(_one_segment(tmp_path))
    assert segment is not None
    assert segment.meta["format_version"] == FORMAT_VERSION
    assert segment.meta["span_count"] == 12 and segment.meta["trace_count"] == 3


def test_a_future_format_version_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    path = _one_segment(tmp_path)
    _rewrite_footer(path, lambda meta: meta.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(SegmentFormatError, match=rf"{path.name}.*version {FORMAT_VERSION + 1}.*upgrade"):
        open_segment(path)


def test_a_footer_missing_a_field_names_the_field_and_the_file(tmp_path: Path) -> None:
    path = _one_segment(tmp_path)
    _rewrite_footer(path, lambda meta: meta.pop("services"))
    with pytest.raises(SegmentFormatError, match=rf"{path.name}.*'services'"):
        open_segment(path)


def test_the_store_reports_an_unreadable_segment_and_serves_the_rest(tmp_path: Path, caplog) -> None:
    path = _one_segment(tmp_path)
    _rewrite_footer(path, lambda meta: meta.update(format_version=99))
    store = open_store(tmp_path, flush_interval_s=3600)
    store.write(_spans(traces=2, start_ns=None))
    with caplog.at_level(logging.ERROR):
        found = store.find_trace_ids(TraceQuery())
    store.close()
    assert len(found) == 2  # the tail's traces; the unreadable segment is left out, not fatal
    assert any(path.name in r.getMessage() and "version 99" in r.getMessage() for r in caplog.records)
