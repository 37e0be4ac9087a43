from __future__ import annotations

import pytest

from spanlake.query.params import (
    ParamError,
    epoch_hint_to_ns,
    parse_bool,
    parse_go_duration,
    parse_int,
    parse_rfc3339_nano,
    parse_string_map,
)

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("1ns", 1),
        ("100us", 100_000),
        ("100µs", 100_000),
        ("100μs", 100_000),
        ("10ms", 10_000_000),
        ("1.2s", 1_200_000_000),
        (".5s", S // 2),
        ("1m30s", 90 * S),
        ("2h", 7200 * S),
        ("1h2m3.5s", 3723 * S + S // 2),
        ("-3us", -3000),
        ("+1s", S),
    ],
)
def test_go_durations(text, ns):
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize("text", ["", "1", "10", "1d", "s", "1.2.3s", "ms10", "1 s"])
def test_malformed_go_durations(text):
    with pytest.raises(ParamError, match="invalid duration"):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2017-01-26T16:46:31.639875Z", 1485449191639875000),
        ("2017-01-26T16:46:31Z", 1485449191000000000),
        ("2017-01-26T16:46:31.123456789Z", 1485449191123456789),
        ("2017-01-26T18:46:31.5+02:00", 1485449191500000000),
        ("2017-01-26T14:46:31.5-02:00", 1485449191500000000),
        # Grafana does not URL-encode the value, so "+02:00" arrives as " 02:00".
        ("2017-01-26T18:46:31.5 02:00", 1485449191500000000),
    ],
)
def test_rfc3339_nano(text, ns):
    assert parse_rfc3339_nano(text) == ns


@pytest.mark.parametrize("text", ["2017-01-26", "1485449191", "2017-13-26T16:46:31Z", "2017-01-26T16:46:31"])
def test_malformed_rfc3339(text):
    with pytest.raises(ParamError, match="RFC3339"):
        parse_rfc3339_nano(text)


def test_epoch_hints_tell_microseconds_from_milliseconds():
    assert epoch_hint_to_ns("start", "1706678909209712") == 1706678909209712000
    assert epoch_hint_to_ns("start", "1706678909209") == 1706678909209000000


def test_int_and_bool_errors_use_jaeger_wording():
    with pytest.raises(ParamError, match=r"unable to parse param 'limit': strconv\.ParseInt: parsing \"x\""):
        parse_int("limit", "x")
    assert parse_bool("raw", "t") and not parse_bool("raw", "FALSE")
    with pytest.raises(ParamError, match=r"strconv\.ParseBool"):
        parse_bool("raw", "yes")


def test_string_map_rejects_non_string_values():
    assert parse_string_map("tags", '{"a":"1","b":"x"}') == {"a": "1", "b": "x"}
    with pytest.raises(ParamError, match="malformed 'tags' parameter"):
        parse_string_map("tags", '{"a":1}')
    with pytest.raises(ParamError, match="malformed 'tags' parameter"):
        parse_string_map("tags", "{not json")
    with pytest.raises(ParamError, match="malformed 'tags' parameter"):
        parse_string_map("tags", '["a"]')
