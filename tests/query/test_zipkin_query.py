"""Zipkin's ``/api/v2/traces`` parameters -> the one storage search (``zipkin_trace_query``)."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from spanlake.query.params import ParamError
from spanlake.query.zipkin_api import zipkin_trace_query
from spanlake.storage.api import TraceQuery

NOW_MS = 1_700_000_000_000
DAY_MS = 86_400_000


def query(text: str, names: tuple[str, ...] = ()) -> TraceQuery:
    return zipkin_trace_query(QueryParams(text), NOW_MS, lambda _service: list(names))


def test_no_parameters_means_zipkins_defaults():
    assert query("") == TraceQuery(start_time_min_ns=(NOW_MS - DAY_MS) * 10**6,
                                   start_time_max_ns=NOW_MS * 10**6, search_depth=10)


@pytest.mark.parametrize(("text", "attributes", "marks"), [
    ("annotationQuery=http.path%3D%2Fapi", {"http.path": "/api"}, ()),
    ("annotationQuery=http.path%3D%2Fapi+and+retried", {"http.path": "/api"}, ("retried",)),
    ("annotationQuery=error", {"error": "true"}, ()),
    ("annotationQuery=a%3Db%3Dc", {"a": "b=c"}, ()),  # the first '=' splits
    ("remoteServiceName=db&annotationQuery=slow", {"peer.service": "db"}, ("slow",)),
])
def test_annotation_query_and_remote_service(text, attributes, marks):
    q = query(text)
    assert (dict(q.attributes), q.marks) == (attributes, marks)


def test_times_durations_and_limit():
    q = query("endTs=1000&lookback=400&minDuration=5&maxDuration=7&limit=3")
    assert (q.start_time_min_ns, q.start_time_max_ns) == (600 * 10**6, 1000 * 10**6)
    assert (q.duration_min_ns, q.duration_max_ns, q.search_depth) == (5_000, 7_000, 3)


@pytest.mark.parametrize(("text", "service", "operation"), [
    ("serviceName=all&spanName=all", None, None),  # Lens's "any"
    ("serviceName=web&spanName=get+%2Fcart", "web", "GET /Cart"),  # stored case found
    ("serviceName=web&spanName=post", "web", "post"),  # nothing stored: as asked
])
def test_span_name_is_matched_to_the_stored_name_case_insensitively(text, service, operation):
    q = query(text, names=("GET /Cart", "other"))
    assert (q.service_name, q.operation_name) == (service, operation)


@pytest.mark.parametrize("text", ["limit=0", "limit=x", "endTs=-1", "lookback=1d", f"endTs={10**20}"])
def test_bad_parameters_raise(text):
    with pytest.raises(ParamError):
        query(text)
