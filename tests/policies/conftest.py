"""Fixtures for the policy tests: a SQLite store in tmp_path and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine as SqlEngine

from config.store import open_store
from policies.testing import FakeClock


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[SqlEngine]:
    engine = open_store(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
