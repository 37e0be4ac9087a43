"""The Zipkin v2 span model every Zipkin wire format decodes into, and its mapping to ``SPAN_SCHEMA``.

v2 JSON and v2 protobuf parse straight into ``ZipkinSpan``; v1 JSON and v1 Thrift are first converted
to it (``zipkin_v1.py``), the way Zipkin's own v1 -> v2 converter does. One mapping then follows what
the OpenTelemetry collector's zipkinreceiver does (which Jaeger v2 uses for port 9411):

- localEndpoint -> resource: ``service.name`` (Jaeger's sanitizer names when absent or empty), and
  ``net.host.ip`` / ``net.host.port``;
- remoteEndpoint -> span attributes ``peer.service``, ``net.peer.ip``, ``net.peer.port``;
- tags -> string span attributes (v1 binary annotations keep their Thrift type);
- ``error`` tag -> status ERROR (authoritative, as in Jaeger), ``otel.status_code`` /
  ``otel.status_description`` -> status; those tags are consumed, the status carries them;
- ``otel.scope.name`` / ``otel.scope.version`` (older: ``otel.library.*``) -> the scope;
- annotations -> events; ``debug`` -> flag 2 (Jaeger's debug bit, as its Zipkin fixtures expect);
- ``shared``, and which status tags were sent, -> the ``ZIPKIN_*`` flag bits (``storage/schema.py``),
  so the Zipkin API returns the span as it came and the adjusters know a shared span for sure;
- a ``parentId`` equal to the span's own ID means no parent (Zipkin's "undoing circular dependency");
- an IP that Zipkin accepts is kept as sent (``52.0.0.04``); one that neither Zipkin nor Python can
  parse is dropped from its endpoint, as Zipkin does, instead of failing the whole batch;
- timestamps in microseconds -> nanoseconds. A span without ``timestamp`` starts at its first
  annotation (else 0); one without ``duration`` ends at its last annotation (else it has none).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from spanlake.collector.formats.errors import FormatError
from spanlake.storage.attributes import AttrRow, attr
from spanlake.storage.rows import spans_table
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
)

__all__ = ["DEBUG_FLAG", "EMPTY_SERVICE_NAME", "MISSING_SERVICE_NAME", "Endpoint", "ZipkinSpan",
           "hex_id", "ip_text", "micros", "require_kind", "span_row", "to_table", "trace_id_bytes"]

ZIPKIN_KINDS = ("CLIENT", "SERVER", "PRODUCER", "CONSUMER")

_STATUS_BY_NAME = {"OK": STATUS_OK, "ERROR": STATUS_ERROR, "UNSET": STATUS_UNSET}
_SCOPE_TAGS = {"otel.scope.name": "scope_name", "otel.library.name": "scope_name",
               "otel.scope.version": "scope_version", "otel.library.version": "scope_version"}


@dataclass
class Endpoint:
    service_name: str | None = None  # None: not sent at all; "": sent empty
    ipv4: str | None = None
    ipv6: str | None = None
    port: int | None = None


@dataclass
class ZipkinSpan:
    trace_id: bytes  # 16 bytes; 64-bit IDs are left-padded with zeros
    span_id: bytes  # 8 bytes
    parent_id: bytes | None = None
    name: str = ""
    kind: str | None = None  # one of ZIPKIN_KINDS
    timestamp_us: int | None = None
    duration_us: int | None = None
    local: Endpoint | None = None
    remote: Endpoint | None = None
    annotations: list[tuple[int, str]] = field(default_factory=list)  # (epoch µs, value)
    tags: dict[str, Any] = field(default_factory=dict)  # str values, typed ones from v1 Thrift
    debug: bool = False
    shared: bool = False


def to_table(spans: Iterable[ZipkinSpan]) -> pa.Table:
    """A ``SPAN_SCHEMA`` table, one row per Zipkin span, in input order."""
    return spans_table(span_row(s) for s in spans)


def span_row(span: ZipkinSpan) -> dict[str, Any]:
    start_ns, end_ns = _times_ns(span)
    tags = dict(span.tags)
    code, message, status_flags = _status(tags)
    flags = (DEBUG_FLAG if span.debug else 0) | ZIPKIN_ORIGIN | status_flags | _how_sent(span, tags)
    scope = {column: str(tags.pop(key)) for key, column in _SCOPE_TAGS.items() if key in tags}
    kind = SPAN_KIND_BY_NAME.get((span.kind or "").lower(), 0)
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_id if span.parent_id != span.span_id else None,
        "flags": flags,
        "name": span.name,
        "kind": kind,
        "start_time_unix_nano": start_ns,
        "end_time_unix_nano": end_ns,
        "status_code": code,
        "status_message": message,
        "resource_attributes": _resource(span.local),
        **scope,
        "span_attributes": [attr(k, v) for k, v in tags.items()] + _peer(span.remote),
        "events": [{"time_unix_nano": ts * 1000, "name": value, "attributes": [],
                    "dropped_attributes_count": 0} for ts, value in span.annotations],
    }


def _how_sent(span: ZipkinSpan, tags: dict[str, Any]) -> int:
    """The ``ZIPKIN_*`` bits for what the span carried beyond its values (see ``storage/schema.py``)."""
    flags = ZIPKIN_REMOTE_ENDPOINT if span.remote is not None else 0
    # Zipkin drops ``shared`` from a client span (Span.Builder.build); so do we.
    if span.shared and span.kind != "CLIENT":
        flags |= ZIPKIN_SHARED
    if span.timestamp_us is None:
        flags |= ZIPKIN_NO_TIMESTAMP
    if span.duration_us is None:
        flags |= ZIPKIN_NO_DURATION
    if tags.keys() & {"otel.scope.name", "otel.scope.version"}:
        flags |= ZIPKIN_SCOPE_TAGS
    if tags.keys() & {"otel.library.name", "otel.library.version"}:
        flags |= ZIPKIN_LIBRARY_TAGS
    return flags


def _times_ns(span: ZipkinSpan) -> tuple[int, int]:
    stamps = [ts for ts, _ in span.annotations if ts > 0]
    start = span.timestamp_us if span.timestamp_us is not None else min(stamps, default=0)
    if span.duration_us is not None:
        end = start + span.duration_us
    else:
        end = max([start, *stamps])
    # A corrupt annotation timestamp (a 15-digit value is in the fixtures) must not make the span
    # end before it starts: Jaeger's sanitizer clamps negative durations too.
    return start * 1000, max(start, end) * 1000


def _status(tags: dict[str, Any]) -> tuple[int, str, int]:
    """Status from the tags it is encoded in; removes them (the status carries their meaning).

    Also returns the ``ZIPKIN_*`` flag bits that say which of those tags were sent, and in what form,
    so the Zipkin API can give them back as they came."""
    code_tag = tags.pop("otel.status_code", None)
    flags = (ZIPKIN_STATUS_TAGS if code_tag is not None else 0) | (
        ZIPKIN_STATUS_DESCRIPTION if "otel.status_description" in tags else 0)
    description = str(tags.pop("otel.status_description", "") or "")
    error = tags.get("error")
    # Zipkin marks a failed span by the presence of an ``error`` tag whose value is the message
    # (often empty or "true"); only an explicit "false" says otherwise, and then it stays a tag.
    if error is not None and str(error).lower() != "false":
        del tags["error"]
        text = str(error)
        flags |= ZIPKIN_ERROR_TAG | (ZIPKIN_ERROR_TRUE if text == "true" else 0)
        return STATUS_ERROR, description or ("" if text.lower() in ("", "true") else text), flags
    code = _STATUS_BY_NAME.get(str(code_tag).upper(), STATUS_UNSET) if code_tag is not None else STATUS_UNSET
    return code, description if code == STATUS_ERROR else "", flags


def _resource(local: Endpoint | None) -> list[AttrRow]:
    if local is None or local.service_name is None:
        service = MISSING_SERVICE_NAME
    else:
        service = local.service_name or EMPTY_SERVICE_NAME
    rows = [attr("service.name", service)]
    if local is not None:
        rows += _address("net.host", local)
    return rows


def _peer(remote: Endpoint | None) -> list[AttrRow]:
    if remote is None:
        return []
    rows = [attr("peer.service", remote.service_name)] if remote.service_name else []
    return rows + _address("net.peer", remote)


def _address(prefix: str, endpoint: Endpoint) -> list[AttrRow]:
    rows: list[AttrRow] = []
    # Like the collector: the IPv6 address wins when both are sent (it is the more specific one).
    ip = endpoint.ipv6 or endpoint.ipv4
    if ip:
        rows.append(attr(f"{prefix}.ip", ip))
    if endpoint.port:
        rows.append(attr(f"{prefix}.port", endpoint.port))
    return rows


# --- helpers shared by the wire-format decoders -------------------------------------------------


def hex_id(text: Any, width: int, what: str) -> bytes:
    """A hex ID of up to ``width`` bytes, left-padded: Zipkin allows ``"2"`` for ``...0002``."""
    if not isinstance(text, str) or not 0 < len(text) <= width * 2:
        raise FormatError(f"{what}: expected 1 to {width * 2} hex characters, got {text!r}")
    try:
        return bytes.fromhex(text.rjust(width * 2, "0"))
    except ValueError:
        raise FormatError(f"{what}: not hex: {text!r}") from None


def trace_id_bytes(raw: bytes, what: str) -> bytes:
    """A 16-byte trace ID from 8 (64-bit, left-padded) or 16 raw bytes."""
    if len(raw) not in (8, 16):
        raise FormatError(f"{what}: trace ID must be 8 or 16 bytes, got {len(raw)}")
    return raw.rjust(16, b"\0")


def ip_text(raw: bytes | str | int | None) -> str | None:
    """An IP address as text, from its 4/16 network-order bytes, text or integer; None when absent or
    unparseable (Zipkin drops such an address from the endpoint and keeps the span).

    IPv4 text that Zipkin accepts is kept exactly as sent, leading zeros included (``52.0.0.04``):
    Zipkin stores and returns it so. IPv6 is written compressed, as Zipkin does.
    """
    if raw is None or raw in (b"", ""):
        return None
    if isinstance(raw, bytes) and len(raw) not in (4, 16):
        return None
    return _ip_text(raw)


# Zipkin's IPv4 word: 1-3 decimal digits, at most 255 (zipkin2.Endpoint.isValidIpV4Word).
_IPV4_WORD = r"(?:25[0-5]|2[0-4][0-9]|[01][0-9][0-9]|[0-9][0-9]?)"
_ZIPKIN_IPV4 = re.compile(rf"{_IPV4_WORD}(?:\.{_IPV4_WORD}){{3}}")
_ZIPKIN_EMBEDDED_IPV4 = re.compile(rf"::(?:[fF0]{{4}}:)?({_IPV4_WORD}(?:\.{_IPV4_WORD}){{3}})")


@functools.lru_cache(maxsize=4096)  # a batch repeats a few hosts thousands of times; parsing is slow
def _ip_text(raw: bytes | str | int) -> str | None:
    if isinstance(raw, str):
        if _ZIPKIN_IPV4.fullmatch(raw):
            return raw
        embedded = _ZIPKIN_EMBEDDED_IPV4.fullmatch(raw)
        if embedded:  # ::ffff:1.2.3.4 and ::1.2.3.4 are IPv4 to Zipkin
            return embedded.group(1)
    try:
        return ipaddress.ip_address(raw).compressed
    except ValueError:
        return None


def require_kind(kind: Any, what: str) -> str | None:
    if kind is None:
        return None
    if not isinstance(kind, str) or kind.upper() not in ZIPKIN_KINDS:
        raise FormatError(f"{what}: kind must be one of {', '.join(ZIPKIN_KINDS)}, got {kind!r}")
    return kind.upper()


def micros(value: Any, what: str) -> int | None:
    """An optional non-negative integer of microseconds; 0 means "not set", as in Zipkin."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FormatError(f"{what}: expected a non-negative integer of microseconds, got {value!r}")
    return int(value) or None
