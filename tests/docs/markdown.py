"""Reading the user docs the way the docs tests need: fenced blocks, marked examples, links, headings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.paths import REPO

DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
# An example the tests run is marked by an HTML comment on the line right before its fence.
_EXAMPLE = re.compile(r"^<!-- example: ([\w-]+) -->\n```\w*\n(.*?)^```", re.M | re.S)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.M)


@dataclass(frozen=True)
class Block:
    lang: str
    text: str


def fenced_blocks(text: str) -> list[Block]:
    return [Block(m.group(1), m.group(2)) for m in _FENCE.finditer(text)]


def prose(text: str) -> str:
    """The page without its fenced blocks."""
    return _FENCE.sub("", text)


def examples(page: Path) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in _EXAMPLE.finditer(page.read_text())}


def example(page_name: str, name: str) -> str:
    found = examples(DOCS / page_name)
    assert name in found, f"docs/{page_name} has no example marked {name!r}"
    return found[name]


def links(text: str) -> list[str]:
    return _LINK.findall(prose(text))


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = _HEADING.findall(prose(text))
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def inline_code(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", prose(text))


def env_assignments(block: str) -> dict[str, str]:
    """``export NAME=value`` lines of a shell block."""
    return dict(re.findall(r"^export (\w+)=(\S+)$", block, re.M))
