"""Write-through persistence with group commit.

Policies keep their hot state in memory and stage the rows that record it. The engine
commits an evaluation's rows before it returns its answer, so nothing is authorized that
a restart would forget. Evaluations that finish together share one database transaction
(group commit), which is what keeps thousands of evaluations a second affordable.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from config.errors import StoreError
from policies._tables import policy_control

Row = tuple[Any, dict[str, Any]]


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(micros: int) -> datetime:
    """The aware UTC datetime of `micros` microseconds since the epoch."""
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class WriteSet:
    """Rows staged during one evaluation or hook call."""

    always: list[Row] = field(default_factory=list)
    authorized: list[Row] = field(default_factory=list)


_current: ContextVar[WriteSet | None] = ContextVar("policy_writes", default=None)


class PolicyStore:
    """The policy tables of one store, with staged writes and group commit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._batch: list[Row] = []
        self._done: asyncio.Future[None] | None = None
        self._draining = False

    @contextmanager
    def writes(self) -> Iterator[WriteSet]:
        """Collect the rows staged inside the block (per task, so concurrency is safe)."""
        write_set = WriteSet()
        token = _current.set(write_set)
        try:
            yield write_set
        finally:
            _current.reset(token)

    def stage(self, statement: Any, params: dict[str, Any], *, always: bool) -> None:
        """Stage a row in the current write set; with none open, write it now."""
        write_set = _current.get()
        if write_set is None:
            self.write_now([(statement, params)])
        elif always:
            write_set.always.append((statement, params))
        else:
            write_set.authorized.append((statement, params))

    async def commit(self, write_set: WriteSet, *, authorized: bool) -> None:
        """Durably write the set's rows (the authorized ones only if `authorized`)."""
        rows = write_set.always + write_set.authorized if authorized else write_set.always
        if not rows:
            return
        self._batch.extend(rows)
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        done = self._done
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        await asyncio.shield(done)

    async def _drain(self) -> None:
        try:
            while self._batch:
                batch, done = self._batch, self._done
                self._batch, self._done = [], None
                assert done is not None
                try:
                    await asyncio.to_thread(self.write_now, batch)
                except StoreError as exc:
                    done.set_exception(exc)
                else:
                    done.set_result(None)
        finally:
            self._draining = False

    def write_now(self, rows: list[Row]) -> None:
        """Write `rows` in one transaction, in order; consecutive same statements batch."""
        try:
            with self.engine.begin() as connection:
                for _, run in itertools.groupby(rows, key=lambda row: id(row[0])):
                    group = list(run)
                    connection.execute(group[0][0], [params for _, params in group])
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot write policy state: {exc.__class__.__name__}: {exc}; check that the "
                "store is reachable and writable"
            ) from exc

    def read(self, statement: Any) -> list[sa.Row[Any]]:
        """Run a read query and return every row."""
        try:
            with self.engine.connect() as connection:
                return list(connection.execute(statement))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read policy state: {exc}") from exc

    def control_version(self) -> int:
        """The control version the CLI bumps whenever it changes control state."""
        rows = self.read(sa.select(policy_control.c.version).where(policy_control.c.id == 1))
        return int(rows[0].version) if rows else 0


def bump_control(connection: Connection) -> None:
    """Tell running engines to reload control state; call inside the CLI's transaction."""
    updated = connection.execute(
        policy_control.update()
        .where(policy_control.c.id == 1)
        .values(version=policy_control.c.version + 1)
    )
    if updated.rowcount == 0:
        connection.execute(policy_control.insert().values(id=1, version=1))
