"""The errors every wire-format converter raises for input it cannot (or may not) take."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class FormatError(ValueError):
    """Malformed input. The message says what is wrong and where (field, offset, span index), in
    words a client developer can act on; transports return it as HTTP 400 / gRPC INVALID_ARGUMENT."""


class TooManySpans(Exception):
    """A request carries more spans than ``--max-spans-per-request``. Retrying the same request can
    never succeed: transports answer HTTP 413 / gRPC RESOURCE_EXHAUSTED without ``RetryInfo``
    (non-retryable in the OTLP spec); the client must send smaller batches."""


def client_errors(decode: Callable[P, R]) -> Callable[P, R]:
    """Turn the ways hostile input breaks Python itself into ``FormatError``, for one decoder.

    Deeply nested JSON (``RecursionError`` in ``json`` or in our recursive converters), strings
    with lone surrogates that Arrow cannot store as UTF-8 (``UnicodeError``) and integers beyond
    int64 (``OverflowError`` when a column is built) are all the client's input, never a server
    fault: issue 14 found each as an HTTP 500.
    """

    @functools.wraps(decode)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return decode(*args, **kwargs)
        except RecursionError:
            raise FormatError("the input is nested too deeply") from None
        except UnicodeError as exc:
            raise FormatError(f"a string is not valid Unicode text ({_ascii(exc)})") from None
        except OverflowError:
            raise FormatError("a number is out of range (timestamps and durations must fit in "
                              "int64 nanoseconds, up to the year 2262)") from None

    return guarded


def _ascii(exc: Exception) -> str:
    return str(exc).encode("ascii", "backslashreplace").decode("ascii")
