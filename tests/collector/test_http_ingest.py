"""The one classification every HTTP receiver uses for what stored nothing."""

from __future__ import annotations

import pytest

from spanlake.collector.bodies import BadEncoding, BodyTooLarge, UnsupportedEncoding
from spanlake.collector.formats.errors import FormatError, TooManySpans
from spanlake.collector.http_ingest import Unsupported, refusal_for
from spanlake.storage.api import StoreOverloaded


@pytest.mark.parametrize(("error", "kind", "status"), [
    (BodyTooLarge("over 16 bytes"), "too_large", 413),
    (TooManySpans("over 10 spans"), "too_large", 413),
    (UnsupportedEncoding("br"), "unsupported", 415),
    (Unsupported("text/xml"), "unsupported", 415),
    (BadEncoding("cannot decompress gzip body"), "bad_encoding", 400),
    (FormatError("truncated varint"), "undecodable", 400),
])
def test_client_errors_are_refused_with_the_clients_status(error, kind, status):
    refusal = refusal_for(error)
    assert refusal is not None and (refusal.kind, refusal.status) == (kind, status)
    assert refusal.message == str(error) and refusal.overload is None


def test_an_overloaded_store_is_a_retryable_503_that_says_when():
    overload = StoreOverloaded("buffer full")
    refusal = refusal_for(overload)
    assert refusal is not None and refusal.status == 503 and refusal.overload is overload
    assert int(refusal.headers["Retry-After"]) >= 1


def test_an_unanticipated_failure_is_not_dressed_up_as_a_client_error():
    assert refusal_for(RuntimeError("bug")) is None
