"""Authentication and the tenant for every gRPC server: one server interceptor.

It runs before the handler lookup, so every method of every service registered on the server, now
or later, is covered (an unknown method is refused as UNAUTHENTICATED before it could be found
UNIMPLEMENTED). Credentials come from the ``authorization`` metadata (``Bearer <token>``), the tenant
from the token or, with auth off, from ``x-scope-orgid``. Refusals: UNAUTHENTICATED,
PERMISSION_DENIED, INVALID_ARGUMENT (unusable tenant name). The tenant is bound around the
handler's own call, in the thread that runs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

from spanlake.auth import ORG_ID_HEADER, Credentials, Decision, decide
from spanlake.selftrace import SelfTracer, grpc_span
from spanlake.tenancy import bound_tenant

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
}


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, credentials: Credentials | None, right_for: Callable[[str], str],
                 on_refused: Callable[[str, Decision], None] | None = None,
                 on_bad_request: Callable[[str], None] | None = None,
                 tracer: SelfTracer | None = None, listener: str = "") -> None:
        self.credentials = credentials
        self.right_for = right_for  # full method name -> right
        self.on_refused = on_refused
        self.on_bad_request = on_bad_request  # (tenant): a handler answered INVALID_ARGUMENT
        self.tracer = tracer
        self.listener = listener

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          details: grpc.HandlerCallDetails) -> Any:
        metadata = {k.lower(): v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}
        decision = decide(self.credentials, self.right_for(details.method), metadata.get("authorization"),
                          metadata.get(ORG_ID_HEADER))
        if decision.tenant is None:
            if self.on_refused is not None:
                self.on_refused(details.method, decision)
            return self._traced(_refusal(decision), details.method, metadata)
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler  # every spanlake method is unary-unary; others pass through as found
        return self._traced(_bound(handler, decision.tenant, self.on_bad_request), details.method, metadata)

    def _traced(self, handler: grpc.RpcMethodHandler, method: str, metadata: dict[str, str]
                ) -> grpc.RpcMethodHandler:
        """With ``--self-trace``, the call also becomes a span (see selftrace.py)."""
        tracer = self.tracer
        if tracer is None:
            return handler
        behavior = handler.unary_unary
        parent = metadata.get("traceparent", "")

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.time_ns()
            code = 0
            try:
                return behavior(request, context)
            except Exception:
                code = _code_number(context.code()) or 2  # an exception without a code is UNKNOWN
                raise
            finally:
                tracer.record(grpc_span(self.listener, method, code, started, time.time_ns(), parent))

        return grpc.unary_unary_rpc_method_handler(call, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


def _code_number(code: grpc.StatusCode | None) -> int:
    return int(code.value[0]) if code is not None else 0


def _refusal(decision: Decision) -> grpc.RpcMethodHandler:
    def refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(_CODES[decision.status], decision.message)
        raise AssertionError("abort returned")  # context.abort always raises

    return grpc.unary_unary_rpc_method_handler(refuse)  # raw bytes: fits any method


def _bound(handler: grpc.RpcMethodHandler, tenant: str,
           on_bad_request: Callable[[str], None] | None) -> grpc.RpcMethodHandler:
    behavior = handler.unary_unary

    def call(request: Any, context: grpc.ServicerContext) -> Any:
        with bound_tenant(tenant):
            try:
                return behavior(request, context)
            except Exception:
                if on_bad_request is not None and context.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    on_bad_request(tenant)
                raise

    return grpc.unary_unary_rpc_method_handler(call, request_deserializer=handler.request_deserializer,
                                               response_serializer=handler.response_serializer)
