"""Fixtures for the store's unit tests: a real SQLite file per test, on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.clock import FakeClock
from actors.store import Store
from protocols.records import Project


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    with Store.open(tmp_path / "corral.db", clock=clock) as store:
        yield store


@pytest.fixture
def project(store: Store, tmp_path: Path) -> Project:
    root = tmp_path / "repo"
    root.mkdir()
    return store.ensure_project(root)
