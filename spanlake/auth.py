"""Who is calling: bearer tokens and UI users from a tokens file, each with a tenant and rights.

The file is TOML (see docs/security.md)::

    [[token]]
    name = "team-a-collector"        # what logs and metrics show; the token itself never is
    token_sha256 = "9f86d0..."       # or token = "..." (plain, for tests and quick starts)
    tenant = "team-a"
    rights = ["ingest"]

    [[user]]                         # HTTP basic auth for the web UI (and its API calls)
    name = "alice"
    password_sha256 = "..."          # or password = "..."
    tenant = "team-a"
    rights = ["query", "sql"]

Secrets are compared as SHA-256 digests with ``hmac.compare_digest`` against every entry, so the
time taken says nothing about how close a guess was nor which entry matched. SHA-256 (not a slow
password hash) because every request is checked: secrets must be long and random (``spanlake
token`` prints one), which is what makes a fast hash safe.

This module decides; the HTTP middleware (``http_auth.py``) and the gRPC interceptor
(``grpc_auth.py``) only carry its answer in their protocol's terms. It lives in ``spanlake/``, the
composition root, because ``collector`` and ``query`` may not import each other and neither needs to
know about auth: ``serve`` wraps their apps and servers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from spanlake.storage.api import DEFAULT_TENANT, InvalidTenant, check_tenant

RIGHTS = ("ingest", "query", "sql", "admin")
ORG_ID_HEADER = "x-scope-orgid"  # Tempo's and Loki's tenant header, also the gRPC metadata key


@dataclass(frozen=True)
class Principal:
    name: str
    tenant: str
    rights: frozenset[str]


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    principal: Principal


class CredentialsError(ValueError):
    """The tokens file cannot be used; the message names the entry and the field."""


@dataclass(frozen=True)
class Credentials:
    tokens: tuple[_Entry, ...]
    users: dict[str, _Entry]

    def with_token(self, token: str, principal: Principal) -> Credentials:
        """These credentials plus one token (made at run time, e.g. for self-tracing)."""
        return Credentials((*self.tokens, _Entry(_sha256(token), principal)), self.users)

    @property
    def has_users(self) -> bool:
        return bool(self.users)

    def bearer(self, token: str) -> Principal | None:
        digest = _sha256(token)
        found = None
        for entry in self.tokens:  # every entry, every time: no early exit to time
            if hmac.compare_digest(digest, entry.digest):
                found = entry.principal
        return found

    def basic(self, user: str, password: str) -> Principal | None:
        entry = self.users.get(user)
        # Compare against a dummy digest for unknown users too, so both cost the same.
        target = entry.digest if entry else _sha256(secrets.token_hex(16))
        ok = hmac.compare_digest(_sha256(password), target)
        return entry.principal if ok and entry else None

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal of an ``Authorization`` value (``Bearer`` or ``Basic``), or None."""
        if not authorization:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return self.bearer(value)
        if scheme.lower() == "basic" and value and self.users:
            try:
                user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return self.basic(user, password) if sep else None
        return None


@dataclass(frozen=True)
class Decision:
    """What to do with a request: serve it as ``tenant``, or refuse it with ``status``."""

    tenant: str | None = None
    status: int = 200  # 400 bad tenant header, 401 no/unknown credentials, 403 not allowed
    message: str = ""
    principal: Principal | None = None


def decide(credentials: Credentials | None, right: str | None, authorization: str | None,
           org_id: str | None) -> Decision:
    """Authenticate and authorise one request needing ``right`` (None: open to everyone).

    With no credentials (auth off), the tenant is ``X-Scope-OrgID`` or the default tenant, as Tempo
    does with multi-tenancy on and off. With credentials, the tenant is the token's; an
    ``X-Scope-OrgID`` naming another tenant is refused (403), never followed.
    """
    if credentials is None or right is None:
        try:
            return Decision(check_tenant(org_id) if org_id else DEFAULT_TENANT)
        except InvalidTenant as exc:
            return Decision(status=400, message=str(exc))
    principal = credentials.authenticate(authorization)
    if principal is None:
        what = "missing" if not authorization else "invalid"
        return Decision(status=401, message=f"{what} credentials: send Authorization: Bearer <token>")
    if right not in principal.rights:
        return Decision(status=403, message=f"{principal.name!r} lacks the {right!r} right",
                        principal=principal)
    if org_id and org_id != principal.tenant:
        return Decision(status=403, message=f"{principal.name!r} may not act for tenant {org_id!r}",
                        principal=principal)
    return Decision(principal.tenant, principal=principal)


def load_credentials(path: Path) -> Credentials:
    """Read a tokens file (format above); ``CredentialsError`` says what is wrong where."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CredentialsError(f"{path}: {exc}") from None
    unknown = set(doc) - {"token", "user"}
    if unknown:
        raise CredentialsError(f"{path}: unknown sections {sorted(unknown)}; use [[token]] and [[user]]")
    tokens = tuple(_entry(path, f"token #{i + 1}", raw, "token")
                   for i, raw in enumerate(doc.get("token", [])))
    users: dict[str, _Entry] = {}
    for i, raw in enumerate(doc.get("user", [])):
        entry = _entry(path, f"user #{i + 1}", raw, "password")
        if entry.principal.name in users:
            raise CredentialsError(f"{path}: user {entry.principal.name!r} is listed twice")
        users[entry.principal.name] = entry
    if not tokens and not users:
        raise CredentialsError(f"{path}: no [[token]] or [[user]] entries")
    digests = [e.digest for e in (*tokens, *users.values())]
    if len(set(digests)) != len(digests):
        raise CredentialsError(f"{path}: the same secret is listed twice")
    return Credentials(tokens, users)


def _entry(path: Path, where: str, raw: object, secret: str) -> _Entry:
    if not isinstance(raw, dict):
        raise CredentialsError(f"{path}: {where} is not a table")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CredentialsError(f"{path}: {where} needs a name")
    where = f"{where} ({name!r})"
    plain, hashed = raw.get(secret), raw.get(f"{secret}_sha256")
    if (plain is None) == (hashed is None):
        raise CredentialsError(f"{path}: {where} needs exactly one of {secret}, {secret}_sha256")
    if plain is not None and (not isinstance(plain, str) or len(plain) < 16):
        raise CredentialsError(f"{path}: {where}: {secret} must be a string of 16 characters or more")
    try:
        digest = _sha256(plain) if plain is not None else bytes.fromhex(str(hashed))
    except ValueError:
        raise CredentialsError(f"{path}: {where}: {secret}_sha256 is not hex") from None
    if len(digest) != 32:
        raise CredentialsError(f"{path}: {where}: {secret}_sha256 must be 64 hex digits")
    rights = raw.get("rights")
    if not isinstance(rights, list) or not rights or not set(rights) <= set(RIGHTS):
        raise CredentialsError(f"{path}: {where}: rights must be a non-empty list of {RIGHTS}")
    try:
        tenant = check_tenant(str(raw.get("tenant", DEFAULT_TENANT)))
    except InvalidTenant as exc:
        raise CredentialsError(f"{path}: {where}: {exc}") from None
    extra = set(raw) - {"name", secret, f"{secret}_sha256", "tenant", "rights"}
    if extra:
        raise CredentialsError(f"{path}: {where}: unknown fields {sorted(extra)}")
    return _Entry(digest, Principal(name, tenant, frozenset(rights)))


def new_token() -> tuple[str, str]:
    """A fresh random token and its SHA-256 hex digest (for ``token_sha256``)."""
    token = secrets.token_urlsafe(32)
    return token, _sha256(token).hex()


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
