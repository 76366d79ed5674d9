"""Fixtures every test package may use: a store on SQLite (in tmp_path) and on PostgreSQL
when COVENANT_TEST_POSTGRES_URL points at a server (.ci/run starts one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL, once per engine; the PostgreSQL database starts empty."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return _postgres_url()


@pytest.fixture
def pg() -> str:
    """An empty PostgreSQL database (cluster mode runs on nothing else); skipped without
    one."""
    return _postgres_url()


def _postgres_url() -> str:
    url = os.environ.get("COVENANT_TEST_POSTGRES_URL", "")
    if not url:
        pytest.skip("set COVENANT_TEST_POSTGRES_URL to run against PostgreSQL")
    _empty_postgres(url)
    return url


def _empty_postgres(url: str) -> None:
    """Start from an empty database: each test's engine must load only its own state."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()
