"""Authentication and the tenant for every HTTP listener: one ASGI middleware around a whole app.

Applied at the app level (``app.add_middleware``), it sees every request before routing, so a
route added later, on any app, is covered without a line of its own. ``right_for(method, path)``
says which right a request needs (None: open, for the health probes only). Refusals: 401 with
``WWW-Authenticate`` (``Basic`` too where UI users exist, so a browser asks for them), 403 for a
missing right or another tenant's ``X-Scope-OrgID``, 400 for an unusable tenant name.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spanlake.auth import ORG_ID_HEADER, Credentials, Decision, decide
from spanlake.tenancy import bound_tenant

RightFor = Callable[[str, str], str | None]  # (method, path) -> right


class AuthMiddleware:
    def __init__(self, app: ASGIApp, credentials: Credentials | None, right_for: RightFor,
                 on_refused: Callable[[str, Decision], None] | None = None) -> None:
        self.app = app
        self.credentials = credentials
        self.right_for = right_for
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        headers = _headers(scope)
        path = scope.get("path", "")
        right = self.right_for(str(scope.get("method", "GET")), path)
        decision = decide(self.credentials, right, headers.get("authorization"),
                          headers.get(ORG_ID_HEADER))
        if decision.tenant is None:
            if self.on_refused is not None:
                self.on_refused(path, decision)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": decision.message})
            else:
                await self._refuse(decision, send)
            return
        scope.setdefault("state", {})["tenant"] = decision.tenant
        with bound_tenant(decision.tenant):
            await self.app(scope, receive, send)

    async def _refuse(self, decision: Decision, send: Send) -> None:
        headers = [(b"content-type", b"application/json")]
        if decision.status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="spanlake"'))
            if self.credentials is not None and self.credentials.has_users:
                headers.append((b"www-authenticate", b'Basic realm="spanlake", charset="UTF-8"'))
        body = json.dumps({"error": decision.message}).encode()
        start: Message = {"type": "http.response.start", "status": decision.status, "headers": headers}
        await send(start)
        await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out
