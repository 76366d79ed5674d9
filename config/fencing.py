"""Fencing: the one place every state write of an agent is checked against its lease.

In cluster mode several daemons share one PostgreSQL store and each agent belongs to
one of them at a time, through a lease with an epoch (``agents/cluster``). A daemon
that lost an agent (paused past its lease, cut off from the database) must not write
that agent's state any more, whatever code path the write takes. Rather than a check in
every store (policy group commit, audit log, transaction journal, nonce reservations,
plan steps, heartbeats, cursors), the store's engine carries a :class:`Fence`:

* every transaction on a fenced engine that writes for an agent is checked at its
  commit, on the same connection and inside the same transaction (a SQLAlchemy
  ``commit`` event on the engine, which runs before the driver's COMMIT): the fence
  locks the agent's lease row and the commit goes ahead only if this daemon still holds
  it at its epoch; else :class:`Fenced` is raised and nothing of the transaction is
  written (it is rolled back when its connection goes back to the pool);
* which agents a transaction writes for is the running context's :func:`writing_for`
  (the runtime sets it around each tick, each watchtower drive, each heartbeat flush),
  so the stores need not know about agents at all;
* a unit of work may pin the epoch it began under: then its writes commit only while
  that very lease is held. A daemon paused past its lease can win the agent back at a
  new epoch while work begun under the old one is still running (a tick waiting on a
  chain); that work must not finish under the new lease, whose take-over never saw it;
* the group committer (`config/group_commit.py`), whose transactions mix many agents'
  requests, captures each request's agents when it is submitted and calls :func:`held`
  itself, so one fenced agent fails only its own requests, not the whole batch.

Why a commit hook and not a check at the start: the check must see the lease as it is
when the writes become visible, and the row lock it takes (FOR SHARE) keeps a new owner
from claiming the lease until this transaction has ended. Why here in `config/`: the
stores live in `config/`, `chains/` and `policies/`, which may not import `agents/`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from config.errors import StoreError

Writers = Mapping[str, int | None]
"""The agents a unit of work writes for, each with the lease epoch it began under (None:
whatever epoch this daemon holds when the write commits)."""

_WRITING_FOR: ContextVar[Writers] = ContextVar("covenant_writing_for", default=MappingProxyType({}))
_CHECKED = "covenant_fence_checked"
"""Key in a connection's info: agents already checked in its current transaction."""


class Fenced(StoreError):
    """This daemon no longer holds the lease of an agent it tried to write for."""

    def __init__(self, message: str, agents: Collection[str]) -> None:
        super().__init__(message)
        self.agents = frozenset(agents)


class Fence(Protocol):
    """What a fenced engine asks before it commits a write for agents."""

    def held(self, connection: Connection, agents: Collection[str]) -> dict[str, int]:
        """Of `agents`, those this daemon holds now, with the epoch it holds each at; their
        lease rows stay locked (shared) until the transaction of `connection` ends."""
        ...

    def refusal(self, agents: Collection[str]) -> Fenced:
        """The error for a write for `agents`, which this daemon does not hold."""
        ...


_FENCES: WeakKeyDictionary[Engine, Fence] = WeakKeyDictionary()


@contextmanager
def writing_for(*agents: str, epochs: Mapping[str, int] | None = None) -> Iterator[None]:
    """Attribute the store writes made inside the block (this task and the tasks it
    starts) to `agents`; `writing_for()` attributes them to nobody. `epochs` pins the
    lease epoch the work began under, per agent (see the module)."""
    pinned = epochs or {}
    token = _WRITING_FOR.set(MappingProxyType({agent: pinned.get(agent) for agent in agents}))
    try:
        yield
    finally:
        _WRITING_FOR.reset(token)


def current() -> Writers:
    """The agents the running context writes for, with their pinned epochs."""
    return _WRITING_FOR.get()


def install(engine: Engine, fence: Fence) -> None:
    """Fence every commit of `engine` that writes for an agent (see the module)."""
    if engine in _FENCES:
        raise RuntimeError("this engine is fenced already")
    _FENCES[engine] = fence
    event.listen(engine, "begin", _on_begin)
    event.listen(engine, "commit", _on_commit)


def fence_of(engine: Engine) -> Fence | None:
    """The fence `engine` carries, if any."""
    return _FENCES.get(engine)


def held(connection: Connection, agents: Collection[str]) -> dict[str, int] | None:
    """Of `agents`, those the connection's engine lets it write for in this transaction,
    with the epoch each is held at; None on an unfenced engine (any write goes). Call
    inside the transaction, before writing, and judge each writer with :func:`admits`."""
    fence = _FENCES.get(connection.engine)
    if fence is None or not agents:
        return None
    epochs = fence.held(connection, agents)
    connection.info.setdefault(_CHECKED, set()).update(agents)
    return epochs


def admits(epochs: Mapping[str, int] | None, writers: Writers) -> set[str]:
    """Of `writers`, those that may write under `epochs` (what :func:`held` found): held,
    and at the epoch their work began under where one is pinned."""
    if epochs is None:
        return set(writers)
    return {
        agent
        for agent, pinned in writers.items()
        if agent in epochs and pinned in (None, epochs[agent])
    }


def _on_begin(connection: Connection) -> None:
    # info belongs to the pooled DBAPI connection and outlives this checkout.
    connection.info.pop(_CHECKED, None)


def _on_commit(connection: Connection) -> None:
    checked = connection.info.pop(_CHECKED, set())
    writers = {agent: epoch for agent, epoch in _WRITING_FOR.get().items() if agent not in checked}
    fence = _FENCES.get(connection.engine)
    if fence is None or not writers:
        return
    missing = set(writers) - admits(fence.held(connection, writers), writers)
    if missing:
        raise fence.refusal(missing)
