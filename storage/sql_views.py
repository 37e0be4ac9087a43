"""What SQL users see: the ``spans``/``events``/``links``/``traces`` views and the attribute macros.

Every name and column here is documented in ``docs/sql.md``; change both together. The views read
``_spans_source``, one snapshot (committed segments + unflushed tail) as the engine hands it to each
query's own connection, so the views are TEMP views of that connection.
"""

from __future__ import annotations

from spanlake.storage.schema import SPAN_KIND_NAMES, STATUS_ERROR, STATUS_OK, STATUS_UNSET, ValueType

SOURCE = "_spans_source"

STATUS_NAMES = {STATUS_UNSET: "unset", STATUS_OK: "ok", STATUS_ERROR: "error"}

TYPE_NAMES = {
    ValueType.EMPTY: "empty",
    ValueType.STRING: "string",
    ValueType.BOOL: "bool",
    ValueType.INT: "int",
    ValueType.DOUBLE: "double",
    ValueType.BYTES: "bytes",
    ValueType.ARRAY: "array",
    ValueType.KVLIST: "kvlist",
}


def _case(column: str, names: dict[int, str]) -> str:
    whens = " ".join(f"WHEN {int(k)} THEN '{v}'" for k, v in names.items())
    return f"CASE {column} {whens} END"


def _hex(column: str) -> str:
    return f"lower(hex({column}))"  # hex() of NULL is NULL: a root's parent stays NULL


# Friendly columns first, so that ``SELECT *`` in a console starts with what people read.
_SPANS = f"""
CREATE TEMP VIEW spans AS SELECT
  {_hex("trace_id")} AS trace_id,
  {_hex("span_id")} AS span_id,
  {_hex("parent_span_id")} AS parent_span_id,
  service_name,
  name,
  kind,
  {_case("kind", SPAN_KIND_NAMES)} AS kind_name,
  make_timestamp_ns(start_time_unix_nano) AS start_time,
  make_timestamp_ns(end_time_unix_nano) AS end_time,
  duration_nano / 1e6 AS duration_ms,
  status_code,
  {_case("status_code", STATUS_NAMES)} AS status_name,
  status_message,
  trace_state,
  flags,
  start_time_unix_nano,
  end_time_unix_nano,
  duration_nano,
  resource_attributes,
  resource_dropped_attributes_count,
  resource_schema_url,
  scope_name,
  scope_version,
  scope_attributes,
  scope_dropped_attributes_count,
  scope_schema_url,
  span_attributes,
  dropped_attributes_count,
  events,
  dropped_events_count,
  links,
  dropped_links_count,
  trace_id AS trace_id_bytes,
  span_id AS span_id_bytes,
  parent_span_id AS parent_span_id_bytes
FROM {SOURCE}
"""

# unnest() and generate_subscripts() in one select list advance in lockstep: one row per element.
_EVENTS = f"""
CREATE TEMP VIEW events AS SELECT
  trace_id, span_id, service_name, span_name, event_index,
  ev.name AS name,
  ev.time_unix_nano AS time_unix_nano,
  make_timestamp_ns(ev.time_unix_nano) AS time,
  ev.attributes AS attributes,
  ev.dropped_attributes_count AS dropped_attributes_count,
  trace_id_bytes, span_id_bytes
FROM (
  SELECT {_hex("trace_id")} AS trace_id, {_hex("span_id")} AS span_id, service_name,
         name AS span_name, unnest(events) AS ev, generate_subscripts(events, 1) - 1 AS event_index,
         trace_id AS trace_id_bytes, span_id AS span_id_bytes
  FROM {SOURCE}
)
"""

_LINKS = f"""
CREATE TEMP VIEW links AS SELECT
  trace_id, span_id, service_name, span_name, link_index,
  {_hex("ln.trace_id")} AS linked_trace_id,
  {_hex("ln.span_id")} AS linked_span_id,
  ln.trace_state AS trace_state,
  ln.attributes AS attributes,
  ln.dropped_attributes_count AS dropped_attributes_count,
  ln.flags AS flags,
  trace_id_bytes, span_id_bytes
FROM (
  SELECT {_hex("trace_id")} AS trace_id, {_hex("span_id")} AS span_id, service_name,
         name AS span_name, unnest(links) AS ln, generate_subscripts(links, 1) - 1 AS link_index,
         trace_id AS trace_id_bytes, span_id AS span_id_bytes
  FROM {SOURCE}
)
"""

# The root is the earliest span without a parent; a trace whose root has not arrived (or was never
# sent) falls back to its earliest span, as Jaeger's trace summaries do.
_ROOT_ORDER = "[(parent_span_id IS NOT NULL)::BIGINT, start_time_unix_nano]"
_TRACES = f"""
CREATE TEMP VIEW traces AS SELECT
  {_hex("trace_id")} AS trace_id,
  arg_min(service_name, {_ROOT_ORDER}) AS root_service_name,
  arg_min(name, {_ROOT_ORDER}) AS root_span_name,
  {_hex(f"arg_min(span_id, {_ROOT_ORDER})")} AS root_span_id,
  make_timestamp_ns(min(start_time_unix_nano)) AS start_time,
  make_timestamp_ns(max(end_time_unix_nano)) AS end_time,
  (max(end_time_unix_nano) - min(start_time_unix_nano)) / 1e6 AS duration_ms,
  count(*) AS span_count,
  count(*) FILTER (WHERE status_code = {STATUS_ERROR}) AS error_count,
  list_sort(list(DISTINCT service_name)) AS services,
  min(start_time_unix_nano) AS start_time_unix_nano,
  max(end_time_unix_nano) AS end_time_unix_nano,
  trace_id AS trace_id_bytes
FROM {SOURCE}
GROUP BY trace_id
"""

VIEWS = (_SPANS, _EVENTS, _LINKS, _TRACES)
VIEW_NAMES = ("spans", "events", "links", "traces")


def _first(value_sql: str) -> str:
    """The first attribute named ``k`` in ``attrs``, mapped through ``value_sql`` (NULL if absent)."""
    return f"list_transform(list_filter(attrs, lambda a: a.key = k), lambda a: {value_sql})[1]"


_T = ValueType
# Text as Jaeger compares tags (pdata AsString), except doubles, which use DuckDB's shortest text.
_AS_TEXT = (
    f"CASE a.type WHEN {_T.STRING} THEN a.str WHEN {_T.BOOL} THEN CAST(a.bool AS VARCHAR) "
    f"WHEN {_T.INT} THEN CAST(a.int AS VARCHAR) WHEN {_T.DOUBLE} THEN CAST(a.double AS VARCHAR) "
    f"WHEN {_T.BYTES} THEN to_base64(a.bytes) WHEN {_T.ARRAY} THEN a.str WHEN {_T.KVLIST} THEN a.str "
    "ELSE '' END"
)

MACROS = {
    "attr": _first(_AS_TEXT),
    "attr_type": _first(_case("a.type", {int(k): v for k, v in TYPE_NAMES.items()})),
    "has_attr": "len(list_filter(attrs, lambda a: a.key = k)) > 0",
    "attr_str": _first(f"CASE WHEN a.type = {_T.STRING} THEN a.str END"),
    "attr_int": _first(f"CASE WHEN a.type = {_T.INT} THEN a.int END"),
    # Numbers compare as numbers whichever way they were sent: ints are widened to DOUBLE.
    "attr_double": _first(
        f"CASE a.type WHEN {_T.DOUBLE} THEN a.double WHEN {_T.INT} THEN CAST(a.int AS DOUBLE) END"),
    "attr_bool": _first(f"CASE WHEN a.type = {_T.BOOL} THEN a.bool END"),
    "attr_bytes": _first(f"CASE WHEN a.type = {_T.BYTES} THEN a.bytes END"),
}

MACRO_SQL = tuple(f"CREATE MACRO {name}(attrs, k) AS {body}" for name, body in MACROS.items())
