"""Answers that tell a client to retry, in each protocol's terms (OTLP spec, "Failures"/"Throttling").

OTLP exporters retry gRPC UNAVAILABLE always and RESOURCE_EXHAUSTED only when the status carries a
``google.rpc.RetryInfo``; without it they drop the data as a permanent failure (issue 14 found the
OpenTelemetry Collector doing exactly that). Over HTTP they retry 429/503 and honour ``Retry-After``.
"""

from __future__ import annotations

import math
from typing import NoReturn

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2

from spanlake.storage.api import StoreOverloaded, StoreUnavailable

_DETAILS_KEY = "grpc-status-details-bin"


def retry_after_header(exc: StoreOverloaded) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}


def retryable_status(exc: StoreOverloaded) -> status_pb2.Status:
    """A ``google.rpc.Status`` with ``RetryInfo``: UNAVAILABLE for a store that cannot write (disk,
    WAL), RESOURCE_EXHAUSTED for a full buffer."""
    code = code_pb2.UNAVAILABLE if isinstance(exc, StoreUnavailable) else code_pb2.RESOURCE_EXHAUSTED
    status = status_pb2.Status(code=code, message=str(exc))
    seconds = max(0.0, exc.retry_after_s)
    delay = Duration(seconds=int(seconds), nanos=int((seconds % 1) * 1e9))
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return status


def abort_retryable(context: grpc.ServicerContext, exc: StoreOverloaded) -> NoReturn:
    """End a gRPC call with ``retryable_status(exc)`` (what ``grpcio-status``'s ``abort_with_status``
    does: the status travels in the ``grpc-status-details-bin`` trailer)."""
    status = retryable_status(exc)
    context.set_trailing_metadata(((_DETAILS_KEY, status.SerializeToString()),))
    grpc_code = grpc.StatusCode.UNAVAILABLE if status.code == code_pb2.UNAVAILABLE \
        else grpc.StatusCode.RESOURCE_EXHAUSTED
    context.abort(grpc_code, status.message)
    raise AssertionError("context.abort raises")
