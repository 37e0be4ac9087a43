"""Parsers for the parameter formats of the Jaeger query APIs.

Each raises ``ParamError`` with a message naming the parameter and the bad value; routers turn it into
HTTP 400 in their API's error shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000

# Go's time.ParseDuration units ("µs" may be U+00B5 or U+03BC).
_DURATION_UNITS: dict[str, int] = {
    "ns": 1,
    "us": NS_PER_US,
    "\u00b5s": NS_PER_US,
    "\u03bcs": NS_PER_US,
    "ms": NS_PER_MS,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+\- ]\d{2}:\d{2})"
)
# Below this an epoch value cannot be microseconds of any date after 1973, so it is milliseconds.
_MICROS_THRESHOLD = 100_000_000_000_000
INT64_MAX = 2**63 - 1


class ParamError(ValueError):
    """A malformed request parameter."""


def parse_go_duration(text: str) -> int:
    """A Go ``time.Duration`` string (``1.5s``, ``100ms``, ``1h2m``, ``-3us``, ``0``) in nanoseconds."""
    body = text[1:] if text[:1] in "+-" else text
    sign = -1 if text.startswith("-") else 1
    if body == "0":
        return 0
    pos, total = 0, 0.0
    if not body:
        raise ParamError(f'time: invalid duration "{text}"')
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            raise ParamError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if total > INT64_MAX:  # Go's time.Duration is int64 nanoseconds (about 292 years)
        raise ParamError(f'time: invalid duration "{text}": out of range')
    return sign * round(total)


def parse_rfc3339_nano(text: str) -> int:
    """An RFC 3339 timestamp with up to nanosecond precision, as integer nanoseconds since the epoch.

    Grafana sends these values without URL-encoding them, so a ``+hh:mm`` offset arrives with the
    ``+`` decoded to a space; that form is accepted too.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ParamError(f'cannot parse "{text}" as RFC3339 (e.g. 2006-01-02T15:04:05.999999999Z07:00)')
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise ParamError(f'cannot parse "{text}" as RFC3339: {exc}') from exc
    offset_s = 0
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        offset_s = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    seconds = int(moment.timestamp()) - offset_s
    return seconds * NS_PER_S + int(fraction.ljust(9, "0") or 0)


def parse_int(name: str, text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise _syntax(name, "strconv.ParseInt", text) from None


def parse_float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _syntax(name, "strconv.ParseFloat", text) from None


def parse_bool(name: str, text: str) -> bool:
    """Go ``strconv.ParseBool``."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise _syntax(name, "strconv.ParseBool", text)


def _syntax(name: str, parser: str, text: str) -> ParamError:
    """Jaeger's wording, so messages match what its users search for."""
    return ParamError(f'unable to parse param \'{name}\': {parser}: parsing "{text}": invalid syntax')


def epoch_hint_to_ns(name: str, text: str) -> int:
    """A trace-by-ID time hint: Jaeger UI sends µs, Grafana sends ms (``TimeRange.UnixMilli``).

    The unit is told apart by magnitude: a µs value of any date after 1973 exceeds 10^14.
    """
    value = parse_int(name, text)
    return value * (NS_PER_US if abs(value) >= _MICROS_THRESHOLD else NS_PER_MS)


def parse_string_map(name: str, text: str) -> dict[str, str]:
    """A JSON object of string values (the v1 ``tags`` and v3 ``query.attributes`` parameters)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ParamError(f"malformed '{name}' parameter, expecting JSON map[string]string: "
                         "nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ParamError(f"malformed '{name}' parameter, expecting JSON map[string]string: {exc}") from None
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ParamError(f"malformed '{name}' parameter, expecting JSON map[string]string: {text}")
    return dict(value)
