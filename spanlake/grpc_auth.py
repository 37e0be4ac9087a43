"""Authentication and the tenant for every gRPC server: one server interceptor.

It runs before the handler lookup, so every method of every service registered on the server, now
or later, is covered (an unknown method is refused as UNAUTHENTICATED before it could be found
UNIMPLEMENTED). Credentials come from the ``authorization`` metadata (``Bearer <token>``), the tenant
from the token or, with auth off, from ``x-scope-orgid``. Refusals: UNAUTHENTICATED,
PERMISSION_DENIED, INVALID_ARGUMENT (unusable tenant name). The tenant is bound around the
handler's own call, in the thread that runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from spanlake.auth import ORG_ID_HEADER, Credentials, Decision, decide
from spanlake.tenancy import bound_tenant

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
}


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, credentials: Credentials | None, right_for: Callable[[str], str],
                 on_refused: Callable[[str, Decision], None] | None = None,
                 on_bad_request: Callable[[str], None] | None = None) -> None:
        self.credentials = credentials
        self.right_for = right_for  # full method name -> right
        self.on_refused = on_refused
        self.on_bad_request = on_bad_request  # (tenant): a handler answered INVALID_ARGUMENT

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          details: grpc.HandlerCallDetails) -> Any:
        metadata = {k.lower(): v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}
        decision = decide(self.credentials, self.right_for(details.method), metadata.get("authorization"),
                          metadata.get(ORG_ID_HEADER))
        if decision.tenant is None:
            if self.on_refused is not None:
                self.on_refused(details.method, decision)
            return _refusal(decision)
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler  # every spanlake method is unary-unary; others pass through as found
        return _bound(handler, decision.tenant, self.on_bad_request)


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
