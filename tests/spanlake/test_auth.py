"""The tokens file and the decision every listener applies."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from spanlake.auth import CredentialsError, decide, load_credentials, new_token
from spanlake.storage.api import DEFAULT_TENANT
from tests.spanlake.auth_support import TOKENS, UI_USER, write_tokens


def test_a_token_maps_to_its_tenant_and_rights(tmp_path: Path) -> None:
    creds = load_credentials(write_tokens(tmp_path))
    principal = creds.authenticate(f"Bearer {TOKENS['team-b']}")
    assert principal is not None
    assert (principal.name, principal.tenant, principal.rights) == ("team-b", "team-b",
                                                                   {"ingest", "query", "sql"})
    assert creds.authenticate(f"bearer   {TOKENS['team-b']}  ") == principal  # scheme is case-insensitive
    assert creds.authenticate(f"Bearer {TOKENS['team-b']}x") is None
    assert creds.authenticate("Bearer") is None
    assert creds.authenticate(f"Token {TOKENS['team-b']}") is None


def test_token_sha256_entries_hold_no_secret(tmp_path: Path) -> None:
    token, digest = new_token()
    assert hashlib.sha256(token.encode()).hexdigest() == digest
    path = tmp_path / "t.toml"
    path.write_text(f'[[token]]\nname = "ci"\ntoken_sha256 = "{digest}"\ntenant = "ci"\n'
                    'rights = ["ingest"]\n')
    assert token not in path.read_text()
    principal = load_credentials(path).authenticate(f"Bearer {token}")
    assert principal is not None and principal.tenant == "ci"


def test_basic_auth_is_for_users_only(tmp_path: Path) -> None:
    creds = load_credentials(write_tokens(tmp_path))
    good = base64.b64encode(f"{UI_USER[0]}:{UI_USER[1]}".encode()).decode()
    assert creds.authenticate(f"Basic {good}") is not None
    as_token = base64.b64encode(f"x:{TOKENS['team-a']}".encode()).decode()
    assert creds.authenticate(f"Basic {as_token}") is None
    assert creds.authenticate("Basic !!!not-base64") is None


def test_decisions() -> None:
    assert decide(None, "query", None, None).tenant == DEFAULT_TENANT
    assert decide(None, "query", None, "team-x").tenant == "team-x"
    assert decide(None, "query", None, "../etc").status == 400


@pytest.mark.parametrize(("text", "message"), [
    ('[[token]]\nname = "a"\ntoken = "short"\nrights = ["ingest"]\n', "16 characters"),
    ('[[token]]\nname = "a"\ntoken = "0123456789abcdefgh"\nrights = ["write"]\n', "rights must be"),
    ('[[token]]\nname = "a"\ntoken = "0123456789abcdefgh"\ntoken_sha256 = "00"\nrights = ["ingest"]\n',
     "exactly one of"),
    ('[[token]]\nname = "a"\ntoken_sha256 = "zz"\nrights = ["ingest"]\n', "not hex"),
    ('[[token]]\nname = "a"\ntoken = "0123456789abcdefgh"\nrights = ["ingest"]\ntenant = "a/b"\n',
     "invalid tenant"),
    ('[[token]]\nname = "a"\ntoken = "0123456789abcdefgh"\nrights = ["ingest"]\nscope = 1\n',
     "unknown fields"),
    ('[[token]]\nname = "a"\ntoken = "0123456789abcdefgh"\nrights = ["ingest"]\n'
     '[[token]]\nname = "b"\ntoken = "0123456789abcdefgh"\nrights = ["query"]\n', "listed twice"),
    ("", "no [[token]] or [[user]]"),
    ("[[token]\n", "t.toml"),
])
def test_a_bad_tokens_file_says_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(CredentialsError) as info:
        load_credentials(path)
    assert message in str(info.value)
    assert "0123456789abcdefgh" not in str(info.value)  # a secret never ends up in an error message
