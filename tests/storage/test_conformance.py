"""Every backend against the same conformance suite (``conformance.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.storage import conformance, jaeger_suite
from tests.storage.memory import MemoryStore


def _memory(_: Path) -> Any:
    return MemoryStore()


def _parquet(data_dir: Path) -> Any:
    # Imported lazily: the segment store is written in parallel, and until it lands this backend's
    # cases fail here rather than the whole module failing to import.
    from spanlake.storage.store import open_store

    return open_store(data_dir)  # the default flush interval: the one users run


BACKENDS: dict[str, Callable[[Path], Any]] = {"memory": _memory, "parquet": _parquet}


def _open(backend: str, data_dir: Path) -> Iterator[Any]:
    store = BACKENDS[backend](data_dir)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(params=list(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _open(request.param, tmp_path)


@pytest.fixture(scope="module", params=list(BACKENDS))
def suite_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One store per backend holding every trace of Jaeger's query cases, as Jaeger's suite runs."""
    for store in _open(request.param, tmp_path_factory.mktemp(request.param)):
        conformance.load_query_fixtures(store)
        yield store


QUERY_CASES = jaeger_suite.query_cases()


def test_jaeger_suite_has_25_query_cases() -> None:
    assert len(QUERY_CASES) == 25


@pytest.mark.parametrize("case", QUERY_CASES, ids=[case.caption for case in QUERY_CASES])
def test_expected_traces_are_those_expected_json_names(case: jaeger_suite.QueryCase) -> None:
    jaeger_suite.check_expected_resolution(case)


@pytest.mark.parametrize("case", QUERY_CASES, ids=[case.caption for case in QUERY_CASES])
def test_find_traces_returns_exactly_the_expected_traces(
    suite_store: Any, case: jaeger_suite.QueryCase
) -> None:
    conformance.check_query_case(suite_store, case)


@pytest.mark.parametrize("check", conformance.STORE_CASES, ids=conformance.names_of(conformance.STORE_CASES))
def test_store_behaviour(store: Any, check: Callable[[Any], None]) -> None:
    check(store)
