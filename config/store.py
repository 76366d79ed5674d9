"""The state store: SQLAlchemy 2 on SQLite (WAL) by default, PostgreSQL by URL.

Each package owns its tables and an Alembic branch of migrations in
``<package>/migrations/``; :func:`open_store` upgrades every branch to its head, so a
new table is one new revision file in the package that uses it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from config.errors import StoreError

ROOT = Path(__file__).resolve().parent.parent
PACKAGES_WITH_MIGRATIONS = ("config", "wallets", "chains", "chains/atomic", "policies", "agents")

metadata = sa.MetaData()

agent_identities = sa.Table(
    "agent_identities",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("hd_index", sa.Integer, nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
"""Agent name -> HD derivation index, assigned once and never reused, so reordering or
removing agents in YAML never changes which keys an agent holds."""


def open_store(url: str, *, settings: dict[str, str] | None = None) -> Engine:
    """Open the store at `url` and apply every pending migration. `settings` are server
    settings every PostgreSQL connection starts with (cluster mode's timeouts)."""
    try:
        engine = _create_engine(url, settings)
    except ImportError as exc:
        raise StoreError(
            f"no database driver for {_safe(url)} ({exc.name} is not installed); for "
            "PostgreSQL install the extra: pip install '.[postgres]'"
        ) from exc
    except (OSError, SQLAlchemyError) as exc:
        raise StoreError(f"cannot open the store {_safe(url)}: {exc}") from exc
    try:
        _migrate(url, engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(
            f"cannot open the store {_safe(url)}: {exc.__class__.__name__}: "
            f"{exc.orig if hasattr(exc, 'orig') else exc}; check the store url "
            "and that the database is reachable and writable"
        ) from exc
    return engine


@contextmanager
def one_daemon(url: str) -> Iterator[None]:
    """Hold the store for one daemon while the block runs; StoreError if another daemon
    holds it already. A SQLite store is one file on this machine: the lock is an `flock`
    on a file beside it, which the kernel releases when the holder exits however it
    exits (SIGKILL included), so a crashed daemon never leaves a stale lock. Two daemons
    on one store would both mint authorizations against the same limits and nonces.
    PostgreSQL stores are shared by design (cluster mode, with leases in the database,
    is where they are guarded); nothing is held for them here."""
    database = sa.engine.make_url(url).database if url.startswith("sqlite") else None
    if not database or database == ":memory:":
        yield
        return
    path = Path(f"{database}.daemon-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise StoreError(
                f"another daemon (pid {holder}) is running on the store {_safe(url)}; stop "
                "it first (one daemon per SQLite store), or give this deployment its own "
                "`store: {url: ...}` or `data_dir`"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _create_engine(url: str, settings: dict[str, str] | None = None) -> Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if settings:
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        return sa.create_engine(url, pool_pre_ping=True, connect_args={"options": options})
    return sa.create_engine(url, pool_pre_ping=True)


def _migrate(url: str, store: Engine) -> None:
    """Upgrade every branch to its head in one transaction, so a crash at any instant
    leaves the store as it was before or as it is after, never half-made.

    Python's sqlite3 driver commits before each DDL statement on its own, which left a
    store killed mid-migration with tables but no ``alembic_version``, unable to open
    again. The migration gets an engine of its own on which SQLAlchemy, not the driver,
    begins the transaction (the recipe in SQLAlchemy's SQLite dialect notes); the
    store's everyday engine keeps the driver's faster behaviour.
    """
    sqlite = store.dialect.name == "sqlite"
    if not sqlite or store.url.database in (None, "", ":memory:"):  # nothing to crash into
        _upgrade(store)
        return
    engine = sa.create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _driver_leaves_transactions_alone)
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))
    try:
        _upgrade(engine)
    finally:
        engine.dispose()


def _upgrade(engine: Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Daemons of one cluster may start at once on a new database: one migrates,
            # the others wait and then find nothing to do. Transaction-scoped, so a
            # crashed migrator holds nothing.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7320311)")
        alembic_config = _alembic_config()
        alembic_config.attributes["connection"] = connection
        command.upgrade(alembic_config, "heads")


def _driver_leaves_transactions_alone(dbapi_connection: Any, _record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, _record)
    dbapi_connection.isolation_level = None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the CLI read while the daemon writes; FULL sync makes a commit durable
    # before we broadcast what it journaled.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _alembic_config() -> AlembicConfig:
    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", str(ROOT / "config" / "migrations"))
    locations = [ROOT / package / "migrations" / "versions" for package in PACKAGES_WITH_MIGRATIONS]
    alembic_config.set_main_option(
        "version_locations", " ".join(str(path) for path in locations if path.is_dir())
    )
    alembic_config.set_main_option("path_separator", "space")
    return alembic_config


def _safe(url: str) -> str:
    """The URL with any password hidden, for error messages."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def agent_indices(engine: Engine, names: Iterable[str]) -> dict[str, int]:
    """The HD index of each agent, assigning the next free index to new names."""
    wanted = list(names)
    try:
        return _agent_indices(engine, wanted)
    except IntegrityError:
        # Another daemon of a cluster assigned them at the same moment: read theirs.
        return _agent_indices(engine, wanted)


def _agent_indices(engine: Engine, wanted: list[str]) -> dict[str, int]:
    with engine.begin() as connection:
        rows = connection.execute(sa.select(agent_identities.c.name, agent_identities.c.hd_index))
        known = {row.name: row.hd_index for row in rows}
        next_index = max(known.values(), default=-1) + 1
        for name in wanted:
            if name not in known:
                connection.execute(
                    agent_identities.insert().values(
                        name=name, hd_index=next_index, created_at=datetime.now(UTC)
                    )
                )
                known[name] = next_index
                next_index += 1
    return {name: known[name] for name in wanted}
