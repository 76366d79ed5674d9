"""Write-through persistence with group commit, and the one-engine-per-store fence.

Policies keep their hot state in memory and stage the rows that record it. The engine
commits an evaluation's rows before it returns its answer, so nothing is authorized that
a restart would forget. Evaluations that finish together share one database transaction
(group commit), which is what keeps thousands of evaluations a second affordable.

Memory is the truth for limits only while no other engine writes the same store, so
an engine first *claims* the store (bumps the epoch in `policy_engine`, then loads its
state) and every transaction it writes checks, under the row's write lock, that the
epoch is still its own. A newer engine on the same store therefore fences every older
one: the older one's commits fail, so it authorizes nothing more, and the newer one
loaded everything the older one committed. Two daemons on one store cannot both spend
up to a limit; the older one stops with an error that says why.
"""

from __future__ import annotations

import contextlib
import operator
import os
import socket
from collections.abc import Callable, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

# Re-exported: the policy modules import these from here; their home is config/.
from config.clock import from_us as from_us  # noqa: PLC0414
from config.clock import to_us as to_us  # noqa: PLC0414
from config.errors import StoreError
from config.group_commit import GroupCommitter
from config.ids import PROCESS_TAG
from config.ids import new_id as new_id  # noqa: PLC0414
from policies._tables import policy_control, policy_engine

Row = tuple[Any, dict[str, Any]]


_FENCE = (
    policy_engine.update()
    .where(policy_engine.c.id == 1, policy_engine.c.epoch == sa.bindparam("f_epoch"))
    .values(epoch=policy_engine.c.epoch)
)


class EngineSuperseded(StoreError):
    """Another engine claimed this store after this one; this one may write nothing more."""


class WriteSet:
    """Rows staged during one evaluation or hook call; a context manager that makes
    itself the current set of the running task."""

    __slots__ = ("_token", "always", "authorized")

    def __init__(self) -> None:
        self.always: list[Row] = []
        self.authorized: list[Row] = []
        self._token: Token[WriteSet | None] | None = None

    def __enter__(self) -> WriteSet:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _current.reset(self._token)


_current: ContextVar[WriteSet | None] = ContextVar("policy_writes", default=None)


@dataclass(eq=False, slots=True)
class _Commit:
    """One evaluation's (or hook call's) rows, and the token `on_commit` gets for it."""

    rows: list[Row]
    token: object | None = None


class PolicyStore:
    """The policy tables of one store, with staged writes and group commit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.on_commit: Callable[[list[Any]], None] | None = None
        """Called with the tokens of each group commit that succeeded, before its
        waiters wake (the engine mints their authorizations there in one batch)."""
        self._epoch: int | None = None
        self.group_commits = 0
        """Transactions written by group commit (for benchmarks and diagnostics)."""
        self.group_committed_rows = 0
        self._sql: dict[
            tuple[int, tuple[str, ...]], tuple[str, Callable[[dict[str, Any]], Any], Any]
        ] = {}
        self._committer: GroupCommitter[_Commit] = GroupCommitter(
            engine,
            self._write,
            describe=_described,
            checks=[self._check_fence],
            committed=self._committed,
        )

    def claim(self, now: datetime) -> int:
        """Become the one engine that writes this store's policy state; every engine
        that claimed it before is fenced from now on. Call before loading any state."""
        owner = f"{socket.gethostname()}:{os.getpid()}:{PROCESS_TAG[:6]}"
        values = {"epoch": policy_engine.c.epoch + 1, "owner": owner, "claimed_at_us": to_us(now)}
        try:
            with self.engine.begin() as connection:
                bumped = connection.execute(
                    policy_engine.update().where(policy_engine.c.id == 1).values(values)
                )
                if bumped.rowcount == 0:  # the row the migration made is gone: start over
                    connection.execute(
                        policy_engine.insert().values({**values, "id": 1, "epoch": 1})
                    )
                epoch = connection.execute(sa.select(policy_engine.c.epoch)).scalar_one()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot claim the store for this policy engine: {exc}; check that the "
                "store is reachable and writable"
            ) from exc
        self._epoch = int(epoch)
        return self._epoch

    def admit_with(
        self, admit: Callable[[Connection, Sequence[list[Row]]], Sequence[Exception | None]]
    ) -> None:
        """Let `admit` refuse single evaluations' rows inside each group commit's
        transaction (called with each commit's rows; None admits, an error refuses: that
        commit fails with it, unwritten). See `policies/shared_limits.py`."""
        self._committer.admissions.append(
            lambda connection, commits: admit(connection, [commit.rows for commit in commits])
        )

    def writes(self) -> WriteSet:
        """A write set to use as `with store.writes() as writes:`; rows staged inside
        the block (by this task only, so concurrent evaluations stay apart) land in it."""
        return WriteSet()

    def stage(self, statement: Any, params: dict[str, Any], *, always: bool) -> None:
        """Stage a row in the current write set; with none open, write it now."""
        write_set = _current.get()
        if write_set is None:
            self.write_now([(statement, params)])
        elif always:
            write_set.always.append((statement, params))
        else:
            write_set.authorized.append((statement, params))

    async def commit(
        self, write_set: WriteSet, *, authorized: bool, token: object | None = None
    ) -> bool:
        """Durably write the set's rows (the authorized ones only if `authorized`).

        `token` goes to :attr:`on_commit` with the rest of its group commit. Returns
        whether anything was written (with nothing to write, `on_commit` never sees it).
        """
        rows = write_set.always + write_set.authorized if authorized else write_set.always
        if not rows:
            return False
        # One future per waiter (not one shared future): a cancelled waiter must not
        # cancel the commit the others are waiting for.
        await self._committer.submit(_Commit(rows, token))
        return True

    async def drain(self) -> None:
        """Wait until every staged group commit is written (shutdown calls it, so no
        writer task outlives the engine that started it)."""
        await self._committer.aclose()

    def write_now(self, rows: list[Row]) -> None:
        """Write `rows` at once, in one transaction with the commits still waiting."""
        self._committer.commit_now(_Commit(rows))

    def _committed(self, commits: Sequence[_Commit]) -> None:
        self.group_commits += 1
        self.group_committed_rows += sum(len(commit.rows) for commit in commits)
        tokens = [commit.token for commit in commits if commit.token is not None]
        if tokens and self.on_commit is not None:
            # If it raises, the committer logs it and the waiters still wake: the engine
            # then mints their authorizations itself.
            self.on_commit(tokens)

    def _write(self, connection: Connection, commits: Sequence[_Commit]) -> None:
        """Write the commits' rows in the committer's transaction, one executemany per
        statement.

        Rows of one statement keep their order; statements run in order of first
        appearance. A row must therefore not depend on a row of another statement staged
        in the same batch (none do: a row is updated only after the evaluation that
        inserted it has returned, which is after its commit).
        """
        groups: dict[int, tuple[Any, list[dict[str, Any]]]] = {}
        for commit in commits:
            for statement, params in commit.rows:
                group = groups.get(id(statement))
                if group is None:
                    groups[id(statement)] = (statement, [params])
                else:
                    group[1].append(params)
        for statement, params_list in groups.values():
            sql, make = self._compiled(statement, tuple(params_list[0]))
            connection.exec_driver_sql(sql, [make(params) for params in params_list])

    def _check_fence(self, connection: Connection) -> None:
        if self._epoch is None:  # not claimed (tools that only read or write control)
            return
        # An UPDATE, not a SELECT: it takes the write lock first (SQLite) or the row lock
        # (PostgreSQL), so a claim cannot slip in between this check and the commit.
        sql, make = self._compiled(_FENCE, ("f_epoch",))
        if connection.exec_driver_sql(sql, make({"f_epoch": self._epoch})).rowcount == 1:
            return
        row = connection.execute(sa.select(policy_engine)).first()
        newer = f"{row.owner} (epoch {row.epoch})" if row is not None else "another engine"
        raise EngineSuperseded(
            f"policy engine of epoch {self._epoch} was superseded: {newer} opened the same "
            "store after it, so this engine writes and authorizes nothing more; run one "
            "daemon per store (restart this one only after stopping the other)"
        )

    def _compiled(
        self, statement: Any, keys: tuple[str, ...]
    ) -> tuple[str, Callable[[dict[str, Any]], Any]]:
        # Compiled once per statement (and set of inserted columns) and executed through
        # the driver's executemany: SQLAlchemy's per-row processing would cost more than
        # the whole evaluation. Inserts name only the columns given, so server defaults
        # apply to the rest.
        cache_key = (id(statement), keys)
        cached = self._sql.get(cache_key)
        if cached is None:
            columns = list(keys) if isinstance(statement, sa.Insert) else None
            compiled = statement.compile(dialect=self.engine.dialect, column_keys=columns)
            defaults = dict(compiled.params)
            if self.engine.dialect.positional:
                names = tuple(compiled.positiontup or ())
                pick = operator.itemgetter(*names) if len(names) > 1 else None

                def make(params: dict[str, Any]) -> Any:
                    if pick is not None and len(params) >= len(names):
                        with contextlib.suppress(KeyError):
                            return pick(params)
                    return tuple(params[n] if n in params else defaults[n] for n in names)

            else:

                def make(params: dict[str, Any]) -> Any:
                    return {**defaults, **params}

            # The statement is kept so its id cannot be reused by another object.
            cached = self._sql[cache_key] = (str(compiled), make, statement)
        return cached[0], cached[1]

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


def _described(error: Exception, commits: Sequence[_Commit]) -> Exception:
    """The error the waiters of a failed group commit get."""
    if isinstance(error, SQLAlchemyError):
        return StoreError(
            f"cannot write policy state: {error.__class__.__name__}: {error}; check that "
            "the store is reachable and writable"
        )
    return error  # EngineSuperseded (a StoreError) or a bug, as it was raised


def bump_control(connection: Connection) -> None:
    """Tell running engines to reload control state; call inside the CLI's transaction."""
    updated = connection.execute(
        policy_control.update()
        .where(policy_control.c.id == 1)
        .values(version=policy_control.c.version + 1)
    )
    if updated.rowcount == 0:
        connection.execute(policy_control.insert().values(id=1, version=1))
