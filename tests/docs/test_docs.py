"""The user docs say only what the code does: flags, variables, defaults, ports, routes and links exist."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from spanlake import cli, serve
from spanlake.config import Settings
from tests.docs.markdown import DOCS, PAGES, anchors, fenced_blocks, inline_code, links, prose

CLIENT_PAGES = ["clients-jaeger.md", "clients-opentelemetry.md", "clients-zipkin.md", "istio-envoy.md",
                "grafana.md", "architecture.md", "operations.md"]
PORT_FIELDS = {f.name: f.default for f in fields(Settings) if f.name.endswith("_port")}
DEFAULT_PORTS = set(PORT_FIELDS.values())


def help_text(command: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.main([command, "--help"])
    return out.getvalue()


def flags_in_help(command: str) -> set[str]:
    """The options argparse lists, one per line (flags inside wrapped descriptions are not options)."""
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)", help_text(command), re.M))


def flag_of(field: str) -> str:
    return "--" + field.replace("_", "-")


def read(name: str) -> str:
    return (DOCS / name).read_text()


def test_every_client_page_exists_and_is_linked_from_another_page() -> None:
    texts = {p.name: p.read_text() for p in PAGES}
    for name in CLIENT_PAGES:
        assert name in texts, f"docs/{name} is missing"
        linked = any(link.partition("#")[0] == name for other, t in texts.items() if other != name
                     for link in links(t))
        assert linked, f"no other page links {name}"


def test_docs_index_links_every_page() -> None:
    listed = {link.partition("#")[0] for link in links(read("README.md"))}
    assert {p.name for p in PAGES if p.name != "README.md"} <= listed


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    text = page.read_text()
    for target in links(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: outside the repository
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: link to missing {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked.read_text()), f"{page.name}: no #{anchor} in {linked.name}"


def _commanded_flags(text: str) -> Iterator[tuple[str, str]]:
    """(command, flag) for each flag written after ``spanlake [serve|compact|sql]`` in a shell block."""
    for block in fenced_blocks(text):
        if block.lang not in ("sh", "bash", "console"):
            continue
        for line in block.text.splitlines():
            # The word alone, not inside a path, host name or volume name.
            for m in re.finditer(r"(?:^|(?<=\s))spanlake(?=\s|$)(?:\s+(serve|compact|sql)\b)?", line):
                rest = line[m.end():]
                if m.group(1) is None and not rest.lstrip().startswith("--"):
                    continue  # the word spanlake in a host name or volume, not the command
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest):
                    yield m.group(1) or "serve", flag  # the image's entry point is spanlake serve


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_spanlake_flag_in_docs_is_in_the_help(page: Path) -> None:
    text = page.read_text()
    helps = {c: flags_in_help(c) for c in ("serve", "compact", "sql")}
    for command, flag in _commanded_flags(text):
        assert flag in helps[command], f"{page.name}: spanlake {command} has no {flag}"
    everything = set().union(*helps.values())
    for code in inline_code(text):
        for flag in re.findall(r"^(--[a-z][a-z0-9-]*)(?: [\w./-]+)?$", code):
            assert flag in everything, f"{page.name}: `{code}` is not a spanlake flag"


def _test_harness_variables() -> set[str]:
    """SPANLAKE_* variables the test suite itself reads (documented for contributors)."""
    tests = Path(__file__).resolve().parents[1]
    return {name for path in tests.rglob("*.py") if path.name != "test_docs.py"
            for name in re.findall(r"SPANLAKE_[A-Z_]+", path.read_text())}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_spanlake_variable_in_docs_is_in_the_help(page: Path) -> None:
    known = set(re.findall(r"SPANLAKE_[A-Z_]+", help_text("serve") + help_text("sql")))
    known |= _test_harness_variables()
    for name in set(re.findall(r"SPANLAKE_[A-Z_]+", page.read_text())):
        assert name in known, f"{page.name}: {name} is not read by spanlake or its tests"


def _table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in prose(text).splitlines() if line.startswith("|") and not line.startswith("|---")]


def test_settings_table_lists_every_setting_with_its_variable_and_default() -> None:
    rows = {r[0].strip("`"): r for r in _table_rows(read("operations.md"))
            if len(r) >= 3 and r[0].startswith("`--") and r[1].startswith("`SPANLAKE_")}
    for f in fields(Settings):
        flag = flag_of(f.name)
        assert flag in rows, f"operations.md: no row for {flag}"
        assert rows[flag][1].strip("`") == "SPANLAKE_" + f.name.upper()
        if f.default is not None:
            assert rows[flag][2].strip("`") == str(f.default), f"operations.md: default of {flag}"
    assert set(rows) <= {flag_of(f.name) for f in fields(Settings)}


def test_compact_table_matches_compact_help() -> None:
    text = " ".join(help_text("compact").split())
    rows = [r for r in _table_rows(read("operations.md"))
            if len(r) == 3 and r[0].startswith("`--") and not r[1].startswith("`SPANLAKE_")]
    assert {r[0].strip("`") for r in rows} == flags_in_help("compact") - {"--help"}
    for flag, default, _ in rows:
        stated = re.escape(flag.strip("`")) + r" \S+ .*?\[default " + re.escape(default.strip("`")) + r"\]"
        assert re.search(stated, text), f"operations.md: default of {flag} is not what --help says"


def test_port_table_gives_each_listener_its_default_port_and_flag() -> None:
    by_flag = {flag_of(name): port for name, port in PORT_FIELDS.items()}
    rows = [r for r in _table_rows(read("operations.md")) if r[0].isdigit() and len(r) == 4]
    assert {r[2].strip("`") for r in rows} == set(by_flag), "operations.md: port table incomplete"
    for port, _, flag, _ in rows:
        assert by_flag[flag.strip("`")] == int(port), f"operations.md: {flag} does not default to {port}"


_PORT_MENTIONS = [
    r"(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\bspanlake[\w.-]*):(\d+)",  # host:port, URLs
    r"\bspanlake[\w.-]*, port_value: (\d+)",  # Envoy socket_address
    r"[Pp]ort[\"']?\s*[:=]\s*(\d+)",  # port: 9411, "reporting_port": 6831, agentPort: 6832
    r"\bports? (\d{4,5})\b",  # prose
    r"-p (\d+):\d+",  # docker run
]


def without_payloads(text: str) -> str:
    """The page less its JSON blocks: those are payloads (a Zipkin span's remote port, an operation
    named "GET /health" in a sampling file), not where spanlake listens or what it serves."""
    return "\n".join([prose(text)] + [b.text for b in fenced_blocks(text) if b.lang != "json"])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_port_in_docs_is_a_spanlake_default_port(page: Path) -> None:
    text = without_payloads(page.read_text())
    for pattern in _PORT_MENTIONS:
        for port in re.findall(pattern, text):
            assert int(port) in DEFAULT_PORTS, f"{page.name}: port {port} is not a spanlake port"


# --- routes -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, FastAPI]]:
    """Every HTTP app exactly as ``spanlake serve`` wires them, by default port."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("docs") / "data")
    store = serve.open_store(settings)
    try:
        runtime = serve.Runtime.from_settings(settings)
        listeners = runtime.build(store)
        admin = runtime.admin_listener()
        for g in listeners.grpc:
            g.server.stop(None)
        yield {h.port: h.app for h in [*listeners.http, *([admin] if admin else [])]}
    finally:
        store.close()


def served(apps: dict[int, FastAPI], method: str | None, path: str, port: int | None = None) -> bool:
    path = re.sub(r"\{[^}]+\}|<[^>]+>", "x", path)  # {traceID}, <trace-id> placeholders
    for app_port, app in apps.items():
        if port is not None and app_port != port:
            continue
        for route in app.routes:
            if getattr(route, "path", "").endswith(":path}") and app_port == PORT_FIELDS["sampling_port"]:
                # The sampling port answers any path; the docs call it /sampling, as Jaeger's clients do.
                if path != "/sampling":
                    continue
            scope = {"type": "http", "path": path, "method": method or "GET"}
            match, _ = route.matches(scope)
            if match == Match.FULL or (method is None and match == Match.PARTIAL):
                return True
    return False


def _route_mentions(text: str) -> Iterator[tuple[str | None, str, int | None]]:
    """(method, path, port) for ``GET /path``, ``http://host:port/path`` and bare backticked API paths."""
    for method, path in re.findall(r"\b(GET|POST) (/[^\s`?|)]*)", text):
        yield method, path, None
    for port, path in re.findall(r"https?://[\w.-]+:(\d+)(/[^\s`'\"?)]*)", text):
        if path.rstrip("/"):
            yield None, path, int(port)
    for code in inline_code(text):
        if re.fullmatch(r"/(?:api|v1)/[^\s?]*", code) and "..." not in code:  # not a prefix like /api/...
            yield None, code, None


def _split_not_served(text: str) -> tuple[str, str]:
    m = re.search(r"<!-- not-served -->(.*?)<!-- /not-served -->", text, re.S)
    return (text.replace(m.group(0), ""), m.group(1)) if m else (text, "")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_route_in_docs_is_served(page: Path, apps: dict[int, FastAPI]) -> None:
    text, _ = _split_not_served(without_payloads(page.read_text()))
    for method, path, port in _route_mentions(text):
        assert served(apps, method, path, port), f"{page.name}: {method} {path} (port {port}) is not served"

