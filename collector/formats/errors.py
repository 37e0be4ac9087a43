"""The one error every wire-format converter raises for input it cannot decode."""

from __future__ import annotations


class FormatError(ValueError):
    """Malformed input. The message says what is wrong and where (field, offset, span index), in
    words a client developer can act on; transports return it as HTTP 400 / gRPC INVALID_ARGUMENT."""
