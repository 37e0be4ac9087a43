"""TLS for every TCP listener, from PEM files, as the OTel Collector's and Jaeger's ``tls`` settings:
``cert_file``/``key_file`` for the server, and ``client_ca_file`` to require and verify client
certificates (mTLS)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc


class TlsError(ValueError):
    pass


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None  # set: every client must present a certificate it signed

    @classmethod
    def from_settings(cls, cert: Path | None, key: Path | None, client_ca: Path | None) -> TlsFiles | None:
        if cert is None and key is None:
            if client_ca is not None:
                raise TlsError("--tls-client-ca needs --tls-cert and --tls-key")
            return None
        if cert is None or key is None:
            raise TlsError("TLS needs both --tls-cert and --tls-key")
        files = cls(cert, key, client_ca)
        files.check()
        return files

    def check(self) -> None:
        """Load everything once at start, so a bad file stops ``serve`` with its name."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot load {self.cert} / {self.key}: {exc}") from None
        if self.client_ca is not None:
            try:
                context.load_verify_locations(self.client_ca)
            except (OSError, ssl.SSLError) as exc:
                raise TlsError(f"cannot load {self.client_ca}: {exc}") from None

    def grpc_credentials(self) -> grpc.ServerCredentials:
        ca = self.client_ca.read_bytes() if self.client_ca else None
        return grpc.ssl_server_credentials([(self.key.read_bytes(), self.cert.read_bytes())],
                                           root_certificates=ca, require_client_auth=ca is not None)

    def uvicorn_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key)}
        if self.client_ca is not None:
            options |= {"ssl_ca_certs": str(self.client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
        return options
