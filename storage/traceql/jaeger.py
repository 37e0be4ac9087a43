"""A Jaeger search (``TraceQuery``) as a spanset filter of the query model: one search engine.

Every condition holds on one span, so a Jaeger search is one ``{...}``: service and operation are
``resource.service.name`` and ``name``, span kind and durations their intrinsics, a tag ``k=v`` a
``TagText`` match at every level, and Jaeger's special tag keys (as its memory store) read span
fields: ``error`` (``true``: status error, ``false``: not error), ``span.status``, ``span.kind``,
``scope.name``, ``scope.version``; ``resource.<k>`` searches resource attributes only. Zipkin's bare
``annotationQuery`` words (``marks``) are plain TraceQL: ``{ event:name = "w" || span.w != nil ||
resource.w != nil }``. The start-time bounds are the search window.
"""

from __future__ import annotations

from spanlake.storage.api import TraceQuery
from spanlake.storage.schema import SPAN_KIND_BY_NAME, SPAN_KIND_NAMES
from spanlake.storage.traceql import model as m

# Tag keys that may be matched against span fields rather than attributes (``_special``).
# Segment pruning on attribute values (the Bloom filters) must never rule these out.
SPECIAL_KEYS = frozenset({"error", "span.status", "span.kind", "scope.name", "scope.version"})
_STATUS_NAMES = ("unset", "ok", "error")
_MIN_NS, _MAX_NS = -(2**63), 2**63 - 1
_NOTHING = m.Static("bool", False)


def to_filter(query: TraceQuery) -> tuple[m.SpansetFilter, int, int]:
    """The spanset filter and the (start, end) window of a Jaeger search."""
    conds: list[m.FieldExpr] = []
    if query.service_name:
        conds.append(_eq(m.Attribute("resource", "service.name"), m.Static("string", query.service_name)))
    if query.operation_name:
        conds.append(_eq(m.Intrinsic("name"), m.Static("string", query.operation_name)))
    if query.span_kind is not None:
        kind = query.span_kind
        conds.append(_eq(m.Intrinsic("kind"), m.Static("kind", _kind_name(kind))) if kind in SPAN_KIND_NAMES
                     else _NOTHING)
    if query.duration_min_ns is not None:
        conds.append(m.BinaryOp(">=", m.Intrinsic("duration"), m.Static("duration", query.duration_min_ns)))
    if query.duration_max_ns is not None:
        conds.append(m.BinaryOp("<=", m.Intrinsic("duration"), m.Static("duration", query.duration_max_ns)))
    for key, value in query.attributes.items():
        conds.append(tag(key, str(value)))
    conds.extend(mark(word) for word in query.marks)
    expr = m.all_of(conds)
    lo = _MIN_NS if query.start_time_min_ns is None else query.start_time_min_ns
    hi = _MAX_NS if query.start_time_max_ns is None else query.start_time_max_ns
    return m.SpansetFilter(expr), lo, hi


def tag(key: str, value: str) -> m.FieldExpr:
    special = _special(key, value)
    if special is not None:
        return special
    if key.startswith("resource."):
        return m.TagText(key.removeprefix("resource."), value, resource_only=True)
    return m.TagText(key, value)


def mark(word: str) -> m.FieldExpr:
    """Zipkin's bare-word annotation query: an event named ``word``, or a span or resource attribute
    with that key (any value)."""
    return m.BinaryOp("||", _eq(m.Intrinsic("event:name"), m.Static("string", word)),
                      m.BinaryOp("||", m.BinaryOp("!=", m.Attribute("span", word), m.Static("nil", None)),
                                 m.BinaryOp("!=", m.Attribute("resource", word), m.Static("nil", None))))


def _special(key: str, value: str) -> m.FieldExpr | None:
    """Jaeger's special tag keys; None when ``key`` is an ordinary attribute key."""
    low = value.lower()
    if key == "error" and low in ("true", "false"):  # span status only, as Jaeger's memory store
        return m.BinaryOp("=" if low == "true" else "!=", m.Intrinsic("status"), m.Static("status", "error"))
    if key == "span.status":
        status = low.removeprefix("status_code_")
        return _eq(m.Intrinsic("status"), m.Static("status", status)) if status in _STATUS_NAMES else _NOTHING
    if key == "span.kind":
        code = SPAN_KIND_BY_NAME.get(low.removeprefix("span_kind_")) if low else None
        return _NOTHING if code is None else _eq(m.Intrinsic("kind"), m.Static("kind", _kind_name(code)))
    if key == "scope.name":
        return _eq(m.Intrinsic("instrumentation:name"), m.Static("string", value))
    if key == "scope.version":
        return _eq(m.Intrinsic("instrumentation:version"), m.Static("string", value))
    return None


def _kind_name(code: int) -> str:
    return SPAN_KIND_NAMES[code] or "unspecified"


def _eq(lhs: m.FieldExpr, rhs: m.FieldExpr) -> m.BinaryOp:
    return m.BinaryOp("=", lhs, rhs)
