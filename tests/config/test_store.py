"""The state store: migrations, WAL, stable agent indices, clear errors; PostgreSQL when
COVENANT_TEST_POSTGRES_URL points at a server (.ci/run starts one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from config.errors import StoreError
from config.store import agent_indices, open_store


def _urls(tmp_path: Path) -> list[str]:
    urls = [f"sqlite:///{tmp_path / 'state.db'}"]
    if os.environ.get("COVENANT_TEST_POSTGRES_URL"):
        urls.append(os.environ["COVENANT_TEST_POSTGRES_URL"])
    return urls


def test_sqlite_store_uses_wal_and_is_migrated(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'nested' / 'state.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        tables = sa.inspect(connection).get_table_names()
    assert {"alembic_version", "agent_identities"} <= set(tables)


def _state(url: str) -> tuple[list[str], list[str]]:
    engine = open_store(url)
    with engine.connect() as connection:
        versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
        state = sorted(row[0] for row in versions), sorted(sa.inspect(connection).get_table_names())
    engine.dispose()
    return state


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = _state(url)
    assert first[0], "no migration was recorded"
    assert _state(url) == first


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_agent_indices_are_stable_and_never_reused(tmp_path: Path, backend: str) -> None:
    url = next((u for u in _urls(tmp_path) if u.startswith(backend)), None)
    if url is None:
        pytest.skip("set COVENANT_TEST_POSTGRES_URL to run against PostgreSQL")
    engine = open_store(url)
    if backend == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM agent_identities")
    assert agent_indices(engine, ["payer", "maker"]) == {"payer": 0, "maker": 1}
    engine.dispose()
    reopened = open_store(url)
    # "payer" left the deployment; a newcomer must not inherit its keys.
    assert agent_indices(reopened, ["maker", "taker"]) == {"maker": 1, "taker": 2}
    assert agent_indices(reopened, ["payer"]) == {"payer": 0}


def test_unwritable_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot open the store"):
        open_store(f"sqlite:///{blocker / 'state.db'}")


def test_unreachable_postgres_hides_password() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql+psycopg://user:s3cret@127.0.0.1:9/covenant")
    assert "s3cret" not in str(caught.value)
    assert "127.0.0.1:9" in str(caught.value)
