"""Turn Jaeger JSON renderings into real wire bytes for tests.

Two inputs: Go-JSON renderings of ``jaeger.thrift`` Batches (``fixtures/jaeger/thrift-jaeger-to-domain``)
and Jaeger-model (gogo jsonpb) traces (``fixtures/jaeger/storage-integration-v1-model/traces``: base64
IDs, RFC3339 times, ``"22938000ns"`` durations, proto ``vType`` names). The v1-model traces become one
Thrift Batch / one ``PostSpansRequest`` per distinct process, as a client per service would send them.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from spanlake.collector.formats.proto import collector_pb2, model_pb2
from spanlake.collector.formats.thrift import TType
from spanlake.storage.attributes import any_value_from_json, attr_value
from tests.collector.formats.thrift_write import TypedStruct, write_binary_struct

THRIFT_TAG_TYPES = {"STRING": 0, "DOUBLE": 1, "BOOL": 2, "LONG": 3, "BINARY": 4}
# v1-model (proto) names -> Thrift TagType; the numbering differs between the two IDLs.
PROTO_TO_THRIFT_TAG = {"STRING": 0, "FLOAT64": 1, "BOOL": 2, "INT64": 3, "BINARY": 4}
THRIFT_REF_TYPES = {"CHILD_OF": 0, "FOLLOWS_FROM": 1}

Transform = Callable[[str], str]


# ---- Go-JSON renderings of jaeger.thrift structs ------------------------------------------------

def thrift_tag(tag: dict[str, Any]) -> TypedStruct:
    vtype = tag["vType"]
    vtype = THRIFT_TAG_TYPES[vtype] if isinstance(vtype, str) else vtype
    fields: TypedStruct = {1: (TType.STRING, tag["key"]), 2: (TType.I32, vtype)}
    if "vStr" in tag:
        fields[3] = (TType.STRING, tag["vStr"])
    if "vDouble" in tag:
        fields[4] = (TType.DOUBLE, float(tag["vDouble"]))
    if "vBool" in tag:
        fields[5] = (TType.BOOL, tag["vBool"])
    if "vLong" in tag:
        fields[6] = (TType.I64, tag["vLong"])
    if "vBinary" in tag:
        fields[7] = (TType.STRING, base64.b64decode(tag["vBinary"]))
    return fields


def _tag_list(tags: list[dict[str, Any]]) -> tuple[TType, tuple[TType, list[TypedStruct]]]:
    return TType.LIST, (TType.STRUCT, [thrift_tag(t) for t in tags])


def thrift_process(process: dict[str, Any]) -> TypedStruct:
    fields: TypedStruct = {1: (TType.STRING, process["serviceName"])}
    if process.get("tags") is not None:
        fields[2] = _tag_list(process["tags"])
    return fields


def thrift_span(span: dict[str, Any]) -> TypedStruct:
    fields: TypedStruct = {
        1: (TType.I64, span["traceIdLow"]),
        2: (TType.I64, span.get("traceIdHigh", 0)),
        3: (TType.I64, span["spanId"]),
        4: (TType.I64, span.get("parentSpanId", 0)),
        5: (TType.STRING, span["operationName"]),
        7: (TType.I32, span.get("flags", 0)),
        8: (TType.I64, span["startTime"]),
        9: (TType.I64, span["duration"]),
    }
    if span.get("references"):
        fields[6] = (TType.LIST, (TType.STRUCT, [
            {1: (TType.I32, THRIFT_REF_TYPES[r["refType"]]), 2: (TType.I64, r["traceIdLow"]),
             3: (TType.I64, r.get("traceIdHigh", 0)), 4: (TType.I64, r["spanId"])}
            for r in span["references"]]))
    if span.get("tags") is not None:
        fields[10] = _tag_list(span["tags"])
    if span.get("logs") is not None:
        fields[11] = (TType.LIST, (TType.STRUCT, [
            {1: (TType.I64, lg["timestamp"]), 2: _tag_list(lg.get("fields") or [])} for lg in span["logs"]]))
    return fields


def thrift_batch(batch: dict[str, Any]) -> TypedStruct:
    """A Go-JSON rendering of ``jaeger.Batch`` in the typed form the Thrift writers take."""
    return {1: (TType.STRUCT, thrift_process(batch["process"])),
            2: (TType.LIST, (TType.STRUCT, [thrift_span(s) for s in batch["spans"]]))}


def thrift_batch_bytes(batch: dict[str, Any]) -> bytes:
    """A Go-JSON rendering of ``jaeger.Batch`` as TBinaryProtocol bytes."""
    return write_binary_struct(thrift_batch(batch))


# ---- Jaeger-model (v1, gogo jsonpb) traces ---------------------------------------------------------

def _load(path: Path | str, transform: Transform | None) -> list[dict[str, Any]]:
    text = Path(path).read_text()
    spans: list[dict[str, Any]] = json.loads(transform(text) if transform else text)["spans"]
    return spans


def _time_ns(text: str) -> int:
    """RFC3339 with up to nanosecond digits and a zone (``Z`` or an offset)."""
    m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if not m:
        raise ValueError(f"not an RFC3339 time: {text!r}")
    base = datetime.fromisoformat(m[1] + ("+00:00" if m[3] == "Z" else m[3]))
    frac = (m[2] or "").ljust(9, "0")[:9]
    return int(base.timestamp()) * 1_000_000_000 + int(frac)


def _duration_ns(text: str) -> int:
    if not text.endswith("ns"):
        raise ValueError(f"duration {text!r}: expected Go's '<n>ns' form")
    return int(text[:-2])


def _signed(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True)


def _ids(trace_id_b64: str) -> tuple[int, int]:
    raw = base64.b64decode(trace_id_b64).rjust(16, b"\0")
    return _signed(raw[8:]), _signed(raw[:8])


def _process_key(process: dict[str, Any]) -> str:
    return json.dumps(process, sort_keys=True)


def _groups(spans: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for span in spans:
        process = span.get("process") or {"serviceName": ""}
        groups.setdefault(_process_key(process), (process, []))[1].append(span)
    return list(groups.values())


def _v1_tag_to_thrift(tag: dict[str, Any]) -> dict[str, Any]:
    vtype = tag.get("vType", "STRING")
    out: dict[str, Any] = {"key": tag["key"], "vType": PROTO_TO_THRIFT_TAG[vtype]}
    member = {"STRING": ("vStr", "vStr"), "FLOAT64": ("vFloat64", "vDouble"), "BOOL": ("vBool", "vBool"),
              "INT64": ("vInt64", "vLong"), "BINARY": ("vBinary", "vBinary")}[vtype]
    if member[0] in tag:
        value = tag[member[0]]
        out[member[1]] = int(value) if vtype == "INT64" else value
    return out


def _v1_span_to_thrift(span: dict[str, Any]) -> dict[str, Any]:
    low, high = _ids(span["traceId"])
    refs = []
    for r in span.get("references") or []:
        r_low, r_high = _ids(r["traceId"])
        refs.append({"refType": r.get("refType", "CHILD_OF"), "traceIdLow": r_low, "traceIdHigh": r_high,
                     "spanId": _signed(base64.b64decode(r["spanId"]))})
    return {
        "traceIdLow": low, "traceIdHigh": high, "spanId": _signed(base64.b64decode(span["spanId"])),
        "parentSpanId": 0, "operationName": span.get("operationName", ""), "references": refs,
        "flags": int(span.get("flags", 0)), "startTime": _time_ns(span["startTime"]) // 1000,
        "duration": _duration_ns(span.get("duration", "0ns")) // 1000,
        "tags": [_v1_tag_to_thrift(t) for t in span.get("tags") or []],
        "logs": [{"timestamp": _time_ns(lg["timestamp"]) // 1000,
                  "fields": [_v1_tag_to_thrift(t) for t in lg.get("fields") or []]}
                 for lg in span.get("logs") or []],
    }


def v1_trace_to_thrift_batches(path: Path | str, *, transform: Transform | None = None) -> list[bytes]:
    """A v1-model trace file as TBinaryProtocol ``jaeger.Batch`` bodies, one per process.

    ``transform`` rewrites the file's text first (e.g. Jaeger's date shifting)."""
    out = []
    for process, spans in _groups(_load(path, transform)):
        batch = {"process": {"serviceName": process.get("serviceName", ""),
                             "tags": [_v1_tag_to_thrift(t) for t in process.get("tags") or []]},
                 "spans": [_v1_span_to_thrift(s) for s in spans]}
        out.append(thrift_batch_bytes(batch))
    return out


def _proto_kvs(tags: list[dict[str, Any]] | None) -> list[model_pb2.KeyValue]:
    out = []
    for t in tags or []:
        kv = model_pb2.KeyValue(key=t["key"], v_type=model_pb2.ValueType.Value(t.get("vType", "STRING")))
        kv.v_str = t.get("vStr", "")
        kv.v_bool = bool(t.get("vBool", False))
        kv.v_int64 = int(t.get("vInt64", 0))
        kv.v_float64 = float(t.get("vFloat64", 0.0))
        kv.v_binary = base64.b64decode(t.get("vBinary", ""))
        out.append(kv)
    return out


def _timestamp(text: str) -> Timestamp:
    ns = _time_ns(text)
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def _proto_span(span: dict[str, Any]) -> model_pb2.Span:
    ns = _duration_ns(span.get("duration", "0ns"))
    return model_pb2.Span(
        trace_id=base64.b64decode(span["traceId"]), span_id=base64.b64decode(span["spanId"]),
        operation_name=span.get("operationName", ""), flags=int(span.get("flags", 0)),
        references=[model_pb2.SpanRef(trace_id=base64.b64decode(r["traceId"]),
                                      span_id=base64.b64decode(r["spanId"]),
                                      ref_type=model_pb2.SpanRefType.Value(r.get("refType", "CHILD_OF")))
                    for r in span.get("references") or []],
        start_time=_timestamp(span["startTime"]),
        duration=Duration(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000),
        tags=_proto_kvs(span.get("tags")),
        logs=[model_pb2.Log(timestamp=_timestamp(lg["timestamp"]), fields=_proto_kvs(lg.get("fields")))
              for lg in span.get("logs") or []],
        warnings=span.get("warnings") or [],
    )


def v1_trace_to_post_spans_requests(
    path: Path | str, *, transform: Transform | None = None
) -> list[collector_pb2.PostSpansRequest]:
    """A v1-model trace file as ``PostSpansRequest`` messages, one per process (batch-level process)."""
    out = []
    for process, spans in _groups(_load(path, transform)):
        batch = model_pb2.Batch(
            process=model_pb2.Process(service_name=process.get("serviceName", ""),
                                      tags=_proto_kvs(process.get("tags"))),
            spans=[_proto_span(s) for s in spans])
        out.append(collector_pb2.PostSpansRequest(batch=batch))
    return out


# ---- comparing converted spans with the OTLP form of the same suite ---------------------------------

_OTLP_ENUMS = {"SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
               "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _otlp_attrs(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {a["key"]: any_value_from_json(a.get("value") or {}) for a in items or []}


def _attrs(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: attr_value(a) for a in items}


def _enum(value: Any) -> int:
    return _OTLP_ENUMS.get(value, 0) if isinstance(value, str) else int(value or 0)


def otlp_fixture_differences(rows: list[dict[str, Any]], otlp: dict[str, Any]) -> list[str]:
    """What differs between converted span rows and an OTLP/JSON trace of the same spans (typed
    attribute values, kind, status, parent, times, events, links, scope, resource). Span names are
    compared only where the Jaeger-model span has one: the v1-model copy of the suite predates the
    names upstream later gave to its unnamed spans."""
    by_id = {r["span_id"].hex(): r for r in rows}
    out: list[str] = []
    count = 0
    for rs in otlp["resourceSpans"]:
        resource = _otlp_attrs(rs.get("resource", {}).get("attributes"))
        for ss in rs["scopeSpans"]:
            scope = ss.get("scope") or {}
            for s in ss["spans"]:
                count += 1
                sid = s["spanId"].lower()
                row = by_id.get(sid)
                if row is None:
                    out.append(f"span {sid}: missing")
                    continue
                facts = {
                    "name": (row["name"] or s["name"], s["name"]),
                    "kind": (row["kind"], _enum(s.get("kind"))),
                    "parent": ((row["parent_span_id"] or b"").hex(), (s.get("parentSpanId") or "").lower()),
                    "start": (row["start_time_unix_nano"], int(s["startTimeUnixNano"])),
                    "end": (row["end_time_unix_nano"], int(s["endTimeUnixNano"])),
                    "attributes": (_attrs(row["span_attributes"]), _otlp_attrs(s.get("attributes"))),
                    "resource": (_attrs(row["resource_attributes"]), resource),
                    "status": (row["status_code"], _enum((s.get("status") or {}).get("code", 0))),
                    "scope": ((row["scope_name"], row["scope_version"]),
                              (scope.get("name", ""), scope.get("version", ""))),
                    "events": ([(e["name"], e["time_unix_nano"], _attrs(e["attributes"]))
                                for e in row["events"]],
                               [(e.get("name", ""), int(e["timeUnixNano"]), _otlp_attrs(e.get("attributes")))
                                for e in s.get("events", [])]),
                    "links": ([(lk["span_id"].hex(), _attrs(lk["attributes"])) for lk in row["links"]],
                              [(lk["spanId"].lower(), _otlp_attrs(lk.get("attributes")))
                               for lk in s.get("links", [])]),
                }
                out += [f"span {sid} {k}: {a!r} != {b!r}" for k, (a, b) in facts.items() if a != b]
    if count != len(rows):
        out.append(f"{len(rows)} spans converted, {count} in the OTLP fixture")
    return out
