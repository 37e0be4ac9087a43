"""Column-wise reading of OTLP/JSON in its common form: one list comprehension per field over all spans.

A per-span walk costs several microseconds per span in CPython; reading each field for all spans at
once, and letting Arrow and numpy convert and check whole columns, costs a fraction of that. It covers
the form exporters send (camelCase names, hex IDs, int64 as decimal strings, enums as numbers) and
raises ``Deferred`` for anything else: other spellings, invalid IDs to reject and count, unknown fields,
and every error. The general reader (``otlp_json.py``) then handles the whole request, so both give
the same result and errors are reported the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from spanlake.collector.formats.anyvalue import json_typed
from spanlake.collector.formats.attr_columns import (
    ARRAY,
    BOOL,
    BYTES,
    DOUBLE,
    INT,
    KVLIST,
    STRING,
    list_column,
)
from spanlake.collector.formats.result import ConvertResult
from spanlake.collector.formats.span_columns import Resources, Scopes, assemble
from spanlake.storage.schema import ATTRIBUTE, ATTRIBUTES, EVENT, LINK


class Deferred(Exception):
    """The request is not in the common form; the general reader must handle it."""


AddPart = Callable[[Any, dict[str, Any], str], int]

_SPAN = frozenset({"traceId", "spanId", "parentSpanId", "traceState", "flags", "name", "kind",
                   "startTimeUnixNano", "endTimeUnixNano", "attributes", "droppedAttributesCount",
                   "events", "droppedEventsCount", "links", "droppedLinksCount", "status"})
_EVENT = frozenset({"timeUnixNano", "name", "attributes", "droppedAttributesCount"})
_LINK = frozenset({"traceId", "spanId", "traceState", "attributes", "droppedAttributesCount", "flags"})
_NONE = type(None)
UINT32_MAX, INT64_MAX = 2**32 - 1, 2**63 - 1
SPAN_KINDS = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
              "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def decode_canonical(obj: dict[str, Any], add_resource: AddPart, add_scope: AddPart) -> ConvertResult:
    """The request, if every part of it is in the common form; raises ``Deferred`` otherwise."""
    resource_spans = obj.get("resourceSpans")
    if type(resource_spans) is not list or set(obj) != {"resourceSpans"}:
        raise Deferred
    resources, scopes = Resources(), Scopes()
    spans: list[Any] = []
    scope_resource, scope_count = [], []
    for i, rs in enumerate(resource_spans):
        _check(rs, {"resource", "scopeSpans", "schemaUrl"})
        resource = add_resource(resources, rs, f"resourceSpans[{i}]")
        for j, ss in enumerate(_list(rs.get("scopeSpans"))):
            _check(ss, {"scope", "spans", "schemaUrl"})
            add_scope(scopes, ss, f"resourceSpans[{i}].scopeSpans[{j}]")
            part = _list(ss.get("spans"))
            spans.extend(part)
            scope_resource.append(resource)
            scope_count.append(len(part))
    scope_of_span = np.repeat(np.arange(len(scope_count), dtype=np.int32), scope_count)
    resource_of_span = np.array(scope_resource, np.int32)[scope_of_span]
    table = assemble(_span_columns(spans), resources, scopes, resource_of_span, scope_of_span)
    return ConvertResult(table)


def _span_columns(spans: list[Any]) -> dict[str, pa.Array]:
    _dicts(spans, _SPAN)
    status = [s.get("status") for s in spans]
    _types(status, {dict, _NONE})
    _dicts([st for st in status if st is not None], {"code", "message"})
    return {
        "trace_id": _ids([s.get("traceId") for s in spans], 16),
        "span_id": _ids([s.get("spanId") for s in spans], 8),
        "parent_span_id": _parents([s.get("parentSpanId") for s in spans]),
        "trace_state": _strings([s.get("traceState", "") for s in spans]),
        "flags": _ints([s.get("flags", 0) for s in spans], 0, UINT32_MAX, pa.uint32()),
        "name": _strings([s.get("name", "") for s in spans]),
        "kind": _enums([s.get("kind", 0) for s in spans], SPAN_KINDS),
        "start_time_unix_nano": _nanos([s.get("startTimeUnixNano", "0") for s in spans]),
        "end_time_unix_nano": _nanos([s.get("endTimeUnixNano", "0") for s in spans]),
        "status_code": _enums([st.get("code", 0) if st else 0 for st in status], STATUS_CODES),
        "status_message": _strings([st.get("message", "") if st else "" for st in status]),
        "span_attributes": _attributes([s.get("attributes") for s in spans]),
        "dropped_attributes_count": _counts([s.get("droppedAttributesCount", 0) for s in spans]),
        "events": _events([s.get("events") for s in spans]),
        "dropped_events_count": _counts([s.get("droppedEventsCount", 0) for s in spans]),
        "links": _links([s.get("links") for s in spans]),
        "dropped_links_count": _counts([s.get("droppedLinksCount", 0) for s in spans]),
    }


def _events(per_span: list[Any]) -> pa.Array:
    counts, events = _flatten(per_span)
    _dicts(events, _EVENT)
    struct = pa.StructArray.from_arrays([
        _nanos([e.get("timeUnixNano", "0") for e in events]),
        _strings([e.get("name", "") for e in events]),
        _attributes([e.get("attributes") for e in events]),
        _counts([e.get("droppedAttributesCount", 0) for e in events]),
    ], fields=list(EVENT))
    return list_column(counts, struct, pa.list_(pa.field("item", EVENT, False)))


def _links(per_span: list[Any]) -> pa.Array:
    counts, links = _flatten(per_span)
    _dicts(links, _LINK)
    struct = pa.StructArray.from_arrays([
        _ids([link.get("traceId") for link in links], 16),
        _ids([link.get("spanId") for link in links], 8),
        _strings([link.get("traceState", "") for link in links]),
        _attributes([link.get("attributes") for link in links]),
        _counts([link.get("droppedAttributesCount", 0) for link in links]),
        _ints([link.get("flags", 0) for link in links], 0, UINT32_MAX, pa.uint32()),
    ], fields=list(LINK))
    return list_column(counts, struct, pa.list_(pa.field("item", LINK, False)))


def _attributes(per_row: list[Any]) -> pa.Array:
    offsets, kvs = _flatten(per_row)
    try:  # a KeyValue without key or value, or not an object, is the general reader's case
        strs = [kv["value"].get("stringValue") for kv in kvs]
        keys = [kv["key"] for kv in kvs]
    except (KeyError, TypeError, AttributeError):
        raise Deferred from None
    types = np.full(len(kvs), STRING, np.int8)
    members: dict[str, list[Any]] = {}
    if strs.count(None):  # the rarer, non-string values, one by one
        for i in [i for i, text in enumerate(strs) if text is None]:
            value_type, value = json_typed(kvs[i]["value"], "")
            types[i] = value_type
            if value_type in (ARRAY, KVLIST):
                strs[i] = value
            elif value_type in _MEMBER:
                members.setdefault(_MEMBER[value_type], [None] * len(kvs))[i] = value
    arrays = [_strings(keys), pa.array(types, pa.int8()), _strings(strs, nulls=True)]
    for field in list(ATTRIBUTE)[3:]:
        column = members.get(field.name)
        arrays.append(pa.nulls(len(kvs), field.type) if column is None else pa.array(column, field.type))
    struct = pa.StructArray.from_arrays(arrays, fields=list(ATTRIBUTE))
    return list_column(offsets, struct, ATTRIBUTES)


_MEMBER = {INT: "int", DOUBLE: "double", BOOL: "bool", BYTES: "bytes"}


# ---- whole-column checks and conversions; each raises Deferred rather than guess ------------------


def _check(obj: Any, allowed: set[str]) -> None:
    if type(obj) is not dict or not obj.keys() <= allowed:
        raise Deferred


def _dicts(items: list[Any], allowed: set[str] | frozenset[str]) -> None:
    _types(items, {dict})
    if items and not set().union(*items) <= allowed:
        raise Deferred


def _types(items: list[Any], allowed: set[type]) -> None:
    if not set(map(type, items)) <= allowed:
        raise Deferred


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if type(value) is not list:
        raise Deferred
    return value


def _flatten(per_row: list[Any]) -> tuple[npt.NDArray[np.int32], list[Any]]:
    """List offsets and the concatenated items of per-row lists (absent = empty)."""
    _types(per_row, {list, _NONE})
    offsets = np.zeros(len(per_row) + 1, np.int32)
    np.cumsum([len(items) if items else 0 for items in per_row], out=offsets[1:])
    return offsets, [item for items in per_row if items for item in items]


def _strings(values: list[Any], nulls: bool = False) -> pa.Array:
    """A string column; ``nulls`` allows None (a null). ASCII text is packed with one join, several
    times cheaper than pyarrow's per-object conversion."""
    if nulls and None in values:
        _types(values, {str, _NONE})
        return pa.array(values, pa.string())
    _types(values, {str})
    joined = "".join(values)
    if not joined.isascii():
        return pa.array(values, pa.string())
    offsets = np.zeros(len(values) + 1, np.int32)
    np.cumsum(np.fromiter(map(len, values), np.int32, len(values)), out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(values),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(joined.encode("ascii"))])


def _ints(values: list[Any], lo: int, hi: int, arrow_type: pa.DataType) -> pa.Array:
    _types(values, {int})  # not bool, not float: exactly what the general reader accepts
    array = np.array(values, np.int64) if values else np.zeros(0, np.int64)
    if len(array) and (array.min() < lo or array.max() > hi):
        raise Deferred
    return pa.array(array, arrow_type)


def _enums(values: list[Any], names: dict[str, int]) -> pa.Array:
    """Enum numbers, or their names (protobuf's own JSON writes names)."""
    if not set(map(type, values)) <= {int}:
        _types(values, {int, str})
        try:
            values = [names[v] if type(v) is str else v for v in values]
        except KeyError:
            raise Deferred from None
    return _ints(values, 0, 127, pa.int8())


def _counts(values: list[Any]) -> pa.Array:
    return _ints(values, 0, UINT32_MAX, pa.uint32())


def _nanos(values: list[Any]) -> pa.Array:
    """Decimal strings of unsigned nanoseconds, each within int64."""
    _types(values, {str})
    joined = "".join(values)
    if values and ("" in values or not joined.isdigit() or not joined.isascii()):
        raise Deferred
    try:
        return pa.array(np.array(list(map(int, values)), np.int64))
    except OverflowError:
        raise Deferred from None


def _ids(values: list[Any], size: int) -> pa.Array:
    """Hex IDs of ``size`` bytes, none all zero (those are the general reader's to reject)."""
    _types(values, {str})
    if values and set(map(len, values)) != {2 * size}:
        raise Deferred
    try:
        raw = bytes.fromhex("".join(values))
    except ValueError:
        raise Deferred from None
    if len(raw) != size * len(values):  # whitespace inside an ID
        raise Deferred
    if len(values) and not np.frombuffer(raw, np.uint64).reshape(len(values), -1).any(axis=1).all():
        raise Deferred
    return pa.Array.from_buffers(pa.binary(size), len(values), [None, pa.py_buffer(raw)])


def _parents(values: list[Any]) -> pa.Array:
    """Parent span IDs: absent for roots, else 16 hex characters (all zero: also a root)."""
    _types(values, {str, _NONE})
    present = np.array([v is not None for v in values], np.bool_)
    given = [v for v in values if v is not None]
    if given and set(map(len, given)) != {16}:
        raise Deferred
    try:
        raw = bytes.fromhex("".join(given))
    except ValueError:
        raise Deferred from None
    if len(raw) != 8 * len(given):
        raise Deferred
    matrix = np.zeros((len(values), 8), np.uint8)
    matrix[present] = np.frombuffer(raw, np.uint8).reshape(-1, 8)
    valid = present & matrix.view(np.uint64)[:, 0].astype(np.bool_)
    validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.binary(8), len(values), [validity, pa.py_buffer(matrix.tobytes())])
