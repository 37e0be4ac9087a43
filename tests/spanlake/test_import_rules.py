"""The package boundaries of DESIGN.md, checked on the source: storage imports nothing above it,
collector and query never import each other, ui imports none of them, and only the composition root
(``spanlake/``: cli, serve, auth, tenancy, ...) imports them all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.paths import REPO

ROLES = ("collector", "storage", "query", "ui")
# What each role may import from spanlake (itself included); the composition root is never allowed.
ALLOWED = {
    "storage": {"storage"},
    "collector": {"collector", "storage"},
    "query": {"query", "storage"},
    "ui": {"ui"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n == "spanlake" or n.startswith("spanlake.")}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROLES else "spanlake (composition root)"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_imports_only_what_it_may(role: str) -> None:
    files = [p for p in (REPO / role).rglob("*.py") if "_pb2" not in p.name]
    assert files
    for path in files:
        for module in _imports(path):
            assert _part(module) in ALLOWED[role], f"{path.relative_to(REPO)} imports {module}"
