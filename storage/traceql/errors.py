"""TraceQL errors: both are the caller's fault and become HTTP 400 with the message."""

from __future__ import annotations

# Said for a query that parses but nests too deeply to parse or compile (Python's recursion limit).
TOO_DEEP = "query too complex: its conditions nest too deeply; split it or use fewer conditions"


class TraceQLError(ValueError):
    """The query is invalid (a syntax error with its line and column, or a type error)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unsupported(TraceQLError):
    """Valid TraceQL that spanlake does not run yet; the message names the construct."""

    def __init__(self, construct: str) -> None:
        super().__init__(f"unsupported TraceQL: {construct} is not supported by spanlake yet")
        self.construct = construct
