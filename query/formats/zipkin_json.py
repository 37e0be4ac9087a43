"""Spans -> Zipkin v2 JSON (``zipkin2-api.yaml`` ``Span``), as the Zipkin query API returns them.

Pure: a ``SPAN_SCHEMA`` table in, JSON-ready dicts out. Two mappings, picked per span:

- A span that came in over a Zipkin format (``ZIPKIN_ORIGIN`` flag) is given back as Zipkin would
  return it: the ingest mapping (``collector/formats/zipkin_model.py``) undone. Local endpoint from
  the resource (``service.name``, ``net.host.ip``, ``net.host.port``), remote endpoint from
  ``peer.service``, ``net.peer.ip``, ``net.peer.port``; the ``error`` and ``otel.status_*`` tags
  rebuilt from the status in the form they were sent; ``debug`` and ``shared`` from their flags.
- Any other span (OTLP, Jaeger) is converted as the OpenTelemetry Collector's Zipkin exporter does
  (collector-contrib ``pkg/translator/zipkin/zipkinv2`` ``FromTraces`` + zipkin-go's JSON form):
  resource and scope attributes become tags (scope name/version as ``otel.library.*``), the endpoints
  come from the same semantic-convention keys, status becomes ``otel.status_code`` (the proto enum
  name) / ``otel.status_description`` / ``error=true``, events become annotations (``name`` alone, or
  ``name|{attributes JSON}|dropped count``), links become ``otlp.link.N`` tags, trace state the
  ``w3c.tracestate`` tag, an INTERNAL kind the ``span.kind=internal`` tag. Times round to the nearest
  microsecond; a positive duration under 1 µs becomes 1 µs.

Both lower-case the span name, as Zipkin's server and zipkin-go do.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from spanlake.storage.attributes import AttrRow, attr_as_string, attr_value
from spanlake.storage.schema import (
    DEBUG_FLAG,
    EMPTY_SERVICE_NAME,
    MISSING_SERVICE_NAME,
    SPAN_KIND_BY_NAME,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    ZIPKIN_ERROR_TAG,
    ZIPKIN_ERROR_TRUE,
    ZIPKIN_LIBRARY_TAGS,
    ZIPKIN_NO_DURATION,
    ZIPKIN_NO_TIMESTAMP,
    ZIPKIN_ORIGIN,
    ZIPKIN_REMOTE_ENDPOINT,
    ZIPKIN_SCOPE_TAGS,
    ZIPKIN_SHARED,
    ZIPKIN_STATUS_DESCRIPTION,
    ZIPKIN_STATUS_TAGS,
    ValueType,
)

Json = dict[str, Any]
Row = dict[str, Any]

_KINDS = {SPAN_KIND_BY_NAME[k.lower()]: k for k in ("CLIENT", "SERVER", "PRODUCER", "CONSUMER")}
_INTERNAL = SPAN_KIND_BY_NAME["internal"]
_NO_RESOURCE_SERVICE = "OTLPResourceNoServiceName"  # collector-contrib tracetranslator
# When a resource has no service.name, the exporter falls back to these, noting which in a tag.
_SERVICE_FALLBACKS = ("faas.name", "k8s.deployment.name", "process.executable.name")
_SERVICE_SOURCE_TAG = "otlp.service.name.source"
_STATUS_ENUM = {STATUS_OK: "STATUS_CODE_OK", STATUS_ERROR: "STATUS_CODE_ERROR"}
_ZIPKIN_STATUS = {STATUS_UNSET: "UNSET", STATUS_OK: "OK", STATUS_ERROR: "ERROR"}
_LOCAL_KEYS = ("net.host.ip", "net.host.port")
_CONTAINERS = (ValueType.ARRAY, ValueType.KVLIST)
_REMOTE_KEYS = ("peer.service", "net.peer.ip", "net.peer.port")


def spans_to_zipkin(spans: pa.Table) -> list[Json]:
    """Zipkin v2 JSON spans, in table order."""
    return [span_to_zipkin(row) for row in spans.to_pylist()]


def span_to_zipkin(row: Row) -> Json:
    if row["flags"] & ZIPKIN_ORIGIN:
        return _from_zipkin(row)
    return _from_otlp(row)


def ensure_root(trace: list[Json]) -> list[Json]:
    """The trace with at least one span without ``parentId``.

    Grafana's Zipkin datasource labels a trace by ``trace.find(s => !s.parentId)`` and fails when
    there is none, which happens when the root span was never received. Then the earliest span whose
    parent is missing (or, in a cycle, the earliest span) loses its ``parentId``; nothing else changes.
    """
    if not trace or any("parentId" not in s for s in trace):
        return trace
    ids = {s["id"] for s in trace}
    orphans = [s for s in trace if s["parentId"] not in ids] or trace
    root = min(orphans, key=lambda s: (s.get("timestamp", 0), s["id"]))
    return [({k: v for k, v in s.items() if k != "parentId"} if s is root else s) for s in trace]


# ---- common ----------------------------------------------------------------------------------------


def _head(row: Row) -> Json:
    span: Json = {"traceId": _trace_id(row["trace_id"])}
    if row["parent_span_id"]:
        span["parentId"] = row["parent_span_id"].hex()
    span["id"] = row["span_id"].hex()
    if row["kind"] in _KINDS:
        span["kind"] = _KINDS[row["kind"]]
    if row["name"]:
        span["name"] = row["name"].lower()
    return span


def _trace_id(trace_id: bytes) -> str:
    """64-bit IDs (high half zero) as 16 hex characters, as Zipkin writes them."""
    return trace_id[8:].hex() if trace_id[:8] == bytes(8) else trace_id.hex()


def _endpoint(service: str | None, ip: Any, port: Any, otlp: bool = False) -> Json | None:
    """Zipkin's ``Endpoint``; None when empty. The exporter also drops one with neither a service
    nor an IP (``otlp``)."""
    endpoint: Json = {}
    if service:
        endpoint["serviceName"] = service
    text = _ip(ip)
    if text:
        endpoint["ipv6" if ":" in text else "ipv4"] = text
    if isinstance(port, int) and 0 < port <= 0xFFFF:
        endpoint["port"] = port
    if otlp and not ("serviceName" in endpoint or "ipv4" in endpoint or "ipv6" in endpoint):
        return None
    return endpoint or None


def _ip(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if ":" not in value:
        return value if value.replace(".", "").isdigit() else None  # kept as sent (52.0.0.04)
    try:
        return ipaddress.IPv6Address(value).compressed
    except ValueError:
        return None


def _port(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _put(span: Json, key: str, value: Any) -> None:
    if value:
        span[key] = value


# ---- spans that came from Zipkin ---------------------------------------------------------------


def _from_zipkin(row: Row) -> Json:
    span = _head(row)
    start, end, flags = row["start_time_unix_nano"], row["end_time_unix_nano"], row["flags"]
    if not flags & ZIPKIN_NO_TIMESTAMP:
        _put(span, "timestamp", start // 1000)
    if not flags & ZIPKIN_NO_DURATION:
        _put(span, "duration", (end - start) // 1000)
    resource = {a["key"]: attr_value(a) for a in row["resource_attributes"]}
    service = resource.get("service.name")
    local = _endpoint(None if service in (MISSING_SERVICE_NAME, EMPTY_SERVICE_NAME) else service,
                      resource.get("net.host.ip"), _port(resource.get("net.host.port")))
    attrs = {a["key"]: a for a in row["span_attributes"]}
    remote = None
    if flags & ZIPKIN_REMOTE_ENDPOINT:  # else these keys, if any, were sent as tags
        remote = _endpoint(_value(attrs.pop("peer.service", None)), _value(attrs.pop("net.peer.ip", None)),
                           _port(_value(attrs.pop("net.peer.port", None))))
    _put(span, "localEndpoint", local)
    _put(span, "remoteEndpoint", remote)
    _put(span, "annotations", [{"timestamp": e["time_unix_nano"] // 1000, "value": e["name"]}
                               for e in row["events"]])
    tags = {key: attr_as_string(a) for key, a in attrs.items()}
    tags.update(_zipkin_status_tags(row))
    for bit, prefix in ((ZIPKIN_SCOPE_TAGS, "otel.scope"), (ZIPKIN_LIBRARY_TAGS, "otel.library")):
        if flags & bit:  # in the form(s) they were sent
            tags.update({f"{prefix}.{field}": row[f"scope_{field}"] for field in ("name", "version")
                         if row[f"scope_{field}"]})
    _put(span, "tags", tags)
    if row["flags"] & DEBUG_FLAG:
        span["debug"] = True
    if row["flags"] & ZIPKIN_SHARED:
        span["shared"] = True
    return span


def _value(attribute: AttrRow | None) -> Any:
    return attr_value(attribute) if attribute is not None else None


def _zipkin_status_tags(row: Row) -> dict[str, str]:
    """The status tags in the form they were sent (see ``zipkin_model._status``)."""
    flags, code, message = row["flags"], row["status_code"], row["status_message"]
    tags: dict[str, str] = {}
    if flags & ZIPKIN_STATUS_TAGS:
        tags["otel.status_code"] = _ZIPKIN_STATUS.get(code, "UNSET")
    if flags & ZIPKIN_STATUS_DESCRIPTION and message:
        tags["otel.status_description"] = message
    if flags & ZIPKIN_ERROR_TAG:
        tags["error"] = "true" if flags & ZIPKIN_ERROR_TRUE else message
    return tags


# ---- spans that came from OTLP or Jaeger: the collector's exporter ------------------------------


def _from_otlp(row: Row) -> Json:
    span = _head(row)
    start, end = row["start_time_unix_nano"], row["end_time_unix_nano"]
    if start >= 1_000_000_000:  # zipkin-go leaves out a timestamp before 1970-01-01T00:00:01
        span["timestamp"] = (start + 500) // 1000
    duration = end - start
    if duration > 0:
        span["duration"] = max(1, (duration + 500) // 1000)
    service, tags = _resource_tags(row["resource_attributes"])
    tags.update(_scope_tags(row))
    tags.update({a["key"]: attr_as_string(a) for a in row["span_attributes"]})
    if row["trace_state"]:
        tags["w3c.tracestate"] = row["trace_state"]
    if row["kind"] == _INTERNAL:
        tags["span.kind"] = "internal"
    local = _endpoint(service, tags.get("net.host.ip"), _port(tags.get("net.host.port")), otlp=True)
    remote = _endpoint(tags.get("peer.service"), tags.get("net.peer.ip"), _port(tags.get("net.peer.port")),
                       otlp=True)
    for key in _LOCAL_KEYS + _REMOTE_KEYS:
        tags.pop(key, None)
    tags.pop("error", None)
    if row["status_code"] == STATUS_ERROR:
        tags["error"] = "true"
    if row["status_code"] in _STATUS_ENUM:
        tags["otel.status_code"] = _STATUS_ENUM[row["status_code"]]
        if row["status_message"]:
            tags["otel.status_description"] = row["status_message"]
    for i, link in enumerate(row["links"]):
        tags[f"otlp.link.{i}"] = _link_tag(link)
    _put(span, "localEndpoint", local)
    _put(span, "remoteEndpoint", remote)
    _put(span, "annotations", [_annotation(e) for e in row["events"]])
    _put(span, "tags", tags)
    return span


def _resource_tags(resource: Iterable[AttrRow]) -> tuple[str, dict[str, str]]:
    tags = {a["key"]: attr_as_string(a) for a in resource}
    if not tags:
        return _NO_RESOURCE_SERVICE, tags
    if "service.name" in tags:
        return tags.pop("service.name"), tags
    for key in _SERVICE_FALLBACKS:
        if key in tags:
            service = tags.pop(key)
            tags[_SERVICE_SOURCE_TAG] = key
            return service, tags
    return _NO_RESOURCE_SERVICE, tags


def _scope_tags(row: Row) -> dict[str, str]:
    tags = {a["key"]: attr_as_string(a) for a in row["scope_attributes"]}
    if row["scope_name"]:
        tags["otel.library.name"] = row["scope_name"]
    if row["scope_version"]:
        tags["otel.library.version"] = row["scope_version"]
    return tags


def _raw_json(attributes: Iterable[AttrRow]) -> str:
    """pdata ``AsRaw`` marshalled by Go's encoding/json: sorted keys, compact, bytes as base64."""
    raw = {a["key"]: _raw(a) for a in attributes}
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _raw(attribute: AttrRow) -> Any:
    if attribute["type"] in _CONTAINERS:  # their AsString is their JSON, bytes already base64
        return json.loads(attr_as_string(attribute))
    value = attr_value(attribute)
    return attr_as_string(attribute) if isinstance(value, bytes) else value


def _annotation(event: Row) -> Json:
    time_us = (event["time_unix_nano"] + 500) // 1000
    if not event["attributes"] and not event["dropped_attributes_count"]:
        return {"timestamp": time_us, "value": event["name"]}
    value = f"{event['name']}|{_raw_json(event['attributes'])}|{event['dropped_attributes_count']}"
    return {"timestamp": time_us, "value": value}


def _link_tag(link: Row) -> str:
    return (f"{link['trace_id'].hex()}|{link['span_id'].hex()}|{link['trace_state']}|"
            f"{_raw_json(link['attributes'])}|{link['dropped_attributes_count']}")
