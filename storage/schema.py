"""The one span schema: the internal model, the on-disk Parquet schema and what SQL users see.

One row per span. OTLP's nesting (resource -> scope -> span) is flattened: the resource and scope of a
span are repeated on each of its rows. Parquet's dictionary + RLE encoding makes the repetition nearly
free on disk (rows are sorted so spans of one resource sit together), and a flat row is what DuckDB,
pyarrow and Polars users expect to query without unnesting anything.

Every attribute, at every level, is a list of ``ATTRIBUTE`` structs that keeps the OTLP value type, so an
OTLP -> spans -> OTLP round trip is lossless (Jaeger's conformance suite compares attribute types).
"""

from __future__ import annotations

import enum

import pyarrow as pa

# Bumped whenever a column changes meaning; written into every segment's footer so an old segment can
# always be read by the code for its version (Tempo's vParquetN lesson).
FORMAT_VERSION = 2  # 2: end_time_unix_nano derived, not stored


class ValueType(enum.IntEnum):
    """Which member of ``ATTRIBUTE`` holds the value; mirrors the OTLP ``AnyValue`` oneof."""

    EMPTY = 0  # AnyValue with no member set (OTLP allows it; keep it rather than invent a value)
    STRING = 1
    BOOL = 2
    INT = 3
    DOUBLE = 4
    BYTES = 5
    ARRAY = 6  # ``str`` holds the OTLP/JSON encoding of the ArrayValue: typed, so still lossless
    KVLIST = 7  # ``str`` holds the OTLP/JSON encoding of the KeyValueList


# One attribute. Only the member named by ``type`` is non-null. A struct of typed members (rather than
# one string column) lets SQL compare numbers as numbers and keeps int 1, double 1.0, bool true and
# string "1" apart, which Jaeger's fixtures check. Keys and string values are dictionary-encoded by
# Parquet, so the common case (few distinct keys, repeated values) costs a few bits per attribute.
ATTRIBUTE = pa.struct(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("type", pa.int8(), nullable=False),  # a ValueType
        pa.field("str", pa.string()),  # STRING, or the OTLP/JSON text of ARRAY / KVLIST
        pa.field("int", pa.int64()),
        pa.field("double", pa.float64()),
        pa.field("bool", pa.bool_()),
        pa.field("bytes", pa.binary()),
    ]
)
ATTRIBUTES = pa.list_(pa.field("item", ATTRIBUTE, nullable=False))

EVENT = pa.struct(
    [
        pa.field("time_unix_nano", pa.int64(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("attributes", ATTRIBUTES, nullable=False),
        pa.field("dropped_attributes_count", pa.uint32(), nullable=False),
    ]
)

LINK = pa.struct(
    [
        pa.field("trace_id", pa.binary(16), nullable=False),
        pa.field("span_id", pa.binary(8), nullable=False),
        pa.field("trace_state", pa.string(), nullable=False),
        pa.field("attributes", ATTRIBUTES, nullable=False),
        pa.field("dropped_attributes_count", pa.uint32(), nullable=False),
        pa.field("flags", pa.uint32(), nullable=False),
    ]
)

SPAN_SCHEMA = pa.schema(
    [
        # Fixed-width binary, not hex text: half the bytes, and segments are sorted by it so Parquet's
        # row-group min/max statistics turn a trace lookup inside a segment into one row group read.
        pa.field("trace_id", pa.binary(16), nullable=False),
        pa.field("span_id", pa.binary(8), nullable=False),
        # Null for a root span. OTLP sends empty bytes for "no parent"; null is what SQL users expect.
        pa.field("parent_span_id", pa.binary(8)),
        pa.field("trace_state", pa.string(), nullable=False),
        pa.field("flags", pa.uint32(), nullable=False),  # OTLP span flags; bits 24+: ZIPKIN_* below
        pa.field("name", pa.string(), nullable=False),  # operation name: a plain column, filtered often
        pa.field("kind", pa.int8(), nullable=False),  # OTLP SpanKind number (0 unspecified .. 5 consumer)
        # Integer nanoseconds, exactly as OTLP sends them; SQL views add TIMESTAMP_NS columns.
        pa.field("start_time_unix_nano", pa.int64(), nullable=False),
        pa.field("end_time_unix_nano", pa.int64(), nullable=False),
        # Derived (end - start) and stored: duration filters are per span and common, and a stored
        # column lets Parquet statistics prune row groups for "slower than X" searches.
        pa.field("duration_nano", pa.int64(), nullable=False),
        pa.field("status_code", pa.int8(), nullable=False),  # OTLP StatusCode: 0 unset, 1 ok, 2 error
        pa.field("status_message", pa.string(), nullable=False),
        # Copied out of resource attributes ``service.name`` ("" when absent) because nearly every
        # query filters on it; the attribute itself stays in resource_attributes for the round trip.
        pa.field("service_name", pa.string(), nullable=False),
        pa.field("resource_attributes", ATTRIBUTES, nullable=False),
        pa.field("resource_dropped_attributes_count", pa.uint32(), nullable=False),
        pa.field("resource_schema_url", pa.string(), nullable=False),
        pa.field("scope_name", pa.string(), nullable=False),
        pa.field("scope_version", pa.string(), nullable=False),
        pa.field("scope_attributes", ATTRIBUTES, nullable=False),
        pa.field("scope_dropped_attributes_count", pa.uint32(), nullable=False),
        pa.field("scope_schema_url", pa.string(), nullable=False),
        pa.field("span_attributes", ATTRIBUTES, nullable=False),
        pa.field("dropped_attributes_count", pa.uint32(), nullable=False),
        pa.field("events", pa.list_(pa.field("item", EVENT, nullable=False)), nullable=False),
        pa.field("dropped_events_count", pa.uint32(), nullable=False),
        pa.field("links", pa.list_(pa.field("item", LINK, nullable=False)), nullable=False),
        pa.field("dropped_links_count", pa.uint32(), nullable=False),
    ]
)

# OTLP SpanKind numbers and the lower-case names Jaeger's APIs use for them.
SPAN_KIND_NAMES: dict[int, str] = {
    0: "",
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}
SPAN_KIND_BY_NAME: dict[str, int] = {name: kind for kind, name in SPAN_KIND_NAMES.items()}

STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2

# Bits 16-30 of ``flags`` that spanlake sets on spans decoded from a Zipkin wire format, so the Zipkin API can
# return them exactly as Zipkin would (and the query adjusters can treat them as Zipkin does). OTLP
# reserves bits 10-31 of span flags: an SDK must leave them zero, so OTLP and Jaeger spans do not carry
# them in practice. They are not masked on output: OTLP asks forwarders to copy flags as they are, so
# an OTLP span's flags round-trip unchanged, and a Zipkin span read over OTLP shows these bits.
ZIPKIN_STATUS_DESCRIPTION = 1 << 16  # an ``otel.status_description`` tag was sent
ZIPKIN_SCOPE_TAGS = 1 << 17  # ``otel.scope.name`` / ``otel.scope.version`` tags were sent
ZIPKIN_LIBRARY_TAGS = 1 << 18  # ``otel.library.name`` / ``otel.library.version`` tags were sent
ZIPKIN_REMOTE_ENDPOINT = 1 << 19  # a remoteEndpoint was sent (the ``peer.*``/``net.peer.*`` attributes)
ZIPKIN_ORIGIN = 1 << 24  # decoded from Zipkin v1/v2 (JSON, protobuf, Thrift)
ZIPKIN_SHARED = 1 << 25  # Zipkin ``shared``: a server span that reuses its client's span ID
ZIPKIN_ERROR_TAG = 1 << 26  # the ``error`` tag was sent (its text is the status message)...
ZIPKIN_ERROR_TRUE = 1 << 27  # ...and was exactly "true" (the status message is then empty)
ZIPKIN_STATUS_TAGS = 1 << 28  # ``otel.status_code`` (and description) tags were sent
ZIPKIN_NO_TIMESTAMP = 1 << 29  # no ``timestamp`` was sent (the start comes from the annotations)
ZIPKIN_NO_DURATION = 1 << 30  # no ``duration`` was sent (the end comes from the annotations)
DEBUG_FLAG = 2  # Jaeger's flags bit for debug spans (zipkin-thrift-v1-to-domain/domain_03.json)

# Jaeger v2's ingest sanitizer names (internal/jptrace/sanitizer) for a span with no usable service.
MISSING_SERVICE_NAME = "missing-service-name"
EMPTY_SERVICE_NAME = "empty-service-name"


def empty_spans() -> pa.Table:
    """A table with the span schema and no rows."""
    return SPAN_SCHEMA.empty_table()
