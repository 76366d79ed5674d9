"""Fixtures for the policy tests: an open store (over the shared `store_url`: SQLite, and
PostgreSQL when one is configured) and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine as SqlEngine

from config.store import open_store
from policies.testing import FakeClock


@pytest.fixture
def store(store_url: str) -> Iterator[SqlEngine]:
    engine = open_store(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
