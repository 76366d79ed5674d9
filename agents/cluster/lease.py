"""Agent leases in the store: who ticks which agent, at which epoch, until when.

One row per agent in ``cluster_leases`` (owner, epoch, expires_at) and one per live
daemon in ``cluster_daemons``. Every :meth:`LeaseStore.cycle` (each daemon runs one
every third of the TTL) is one short transaction that:

1. says this daemon is alive for another TTL;
2. renews the leases it holds that have not expired (an expired one is not renewed: it
   is claimed again like any free lease, with a new epoch, because the database may
   already have refused writes under the old one);
3. works out its fair share, ceil(agents / live daemons), and names what it holds
   above it (only agents the runtime says are idle) as surplus: the daemon stops acting
   for those at once, in its event loop (where no tick can start meanwhile), and the
   next cycle releases them in the store; two steps, so no write of a tick or heartbeat
   already on its way is fenced by our own release. This is how a newcomer gets agents;
4. claims free or expired leases up to its share with ``SELECT ... FOR UPDATE SKIP
   LOCKED``, bumping the epoch on every change of owner, and records each claim in
   ``cluster_lease_history``.

Expiry is judged by the database's ``now()`` only, never by a daemon's clock. Each
daemon also keeps a local deadline per lease on its monotonic clock (the cycle's start
plus the TTL, which is earlier than the database's expiry since the database computed it
later): past it, :meth:`LeaseTable.epoch` answers None and the daemon stops ticking and
minting for the agent before the database would refuse its writes.

The connections of this module time out: ``statement_timeout`` and
``idle_in_transaction_session_timeout`` below the TTL, so a daemon paused inside a
transaction (SIGSTOP, a stalled network) loses its row locks to the server, not only
its lease; and a session that still holds a lock on the lease table after a whole TTL
(cut off between two messages of one request, where the server's idle timer is not
armed) is ended by the next daemon's cycle (`_evict_stalled`). No advisory lock ever
decides ownership: a stopped process keeps its session
(the kernel still answers keep-alives), and with it any session lock, for hours.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from config.errors import StoreError

log = logging.getLogger(__name__)

GUARD_MARGIN = 0.1
"""Fraction of the TTL the local deadline keeps in hand against clock-rate drift."""


def default_daemon_id() -> str:
    """<host>-<pid>: unique among live daemons of one deployment."""
    return f"{socket.gethostname()}-{os.getpid()}"


def timeouts(ttl: float) -> dict[str, str]:
    """The server settings of a cluster connection (milliseconds), all below the TTL."""
    idle = max(int(ttl * 1000 / 3), 200)
    statement = max(int(ttl * 1000 / 2), 500)
    return {
        "idle_in_transaction_session_timeout": str(idle),
        "statement_timeout": str(statement),
        "lock_timeout": str(statement),
    }


def cluster_engine(url: str, ttl: float) -> Engine:
    """An engine whose connections carry :func:`timeouts` (PostgreSQL only)."""
    options = " ".join(f"-c {name}={value}" for name, value in timeouts(ttl).items())
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"options": options})


@dataclass(frozen=True, slots=True)
class Held:
    """A lease this daemon holds: its epoch and its local deadline (monotonic)."""

    epoch: int
    deadline: float


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one cycle changed."""

    held: dict[str, int]
    """Every agent held after the cycle, with its epoch."""
    gained: dict[str, int]
    """Agents claimed in this cycle (a new epoch each)."""
    inherited: set[str]
    """Of `gained`, those some daemon held before (their state must be read again)."""
    surplus: list[str]
    """Of `held`, those above the fair share: stop acting for them, release them next."""
    lost: set[str]
    """Agents held before the cycle and not after (expired, taken, or released)."""
    live_daemons: int


class LeaseTable:
    """This daemon's view of the leases it holds; read on every mint, tick and write."""

    def __init__(self) -> None:
        self._held: dict[str, Held] = {}
        self.unguarded = False
        """Test-only (the negative control): ignore local deadlines."""

    def epoch(self, agent: str) -> int | None:
        """The epoch `agent` is held at, or None if not held or past its local deadline."""
        held = self._held.get(agent)
        if held is None:
            return None
        if not self.unguarded and time.monotonic() >= held.deadline:
            return None
        return held.epoch

    def holds(self, agent: str) -> bool:
        """Whether this daemon may act for `agent` now."""
        return self.epoch(agent) is not None

    def believed(self, agent: str) -> int | None:
        """The epoch held, deadline or not (what a write under it would carry)."""
        held = self._held.get(agent)
        return held.epoch if held else None

    def agents(self) -> list[str]:
        """Agents this daemon may act for now."""
        return [agent for agent in self._held if self.holds(agent)]

    def set(self, held: dict[str, int], deadline: float) -> None:
        """Replace the table after a cycle that started (monotonic) at `deadline` - TTL."""
        self._held = {agent: Held(epoch, deadline) for agent, epoch in held.items()}

    def drop(self, agents: Collection[str]) -> None:
        """Stop acting for `agents` at once (before they are released in the store)."""
        for agent in agents:
            self._held.pop(agent, None)


class LeaseStore:
    """The lease rows of one deployment, as seen by daemon `me`."""

    def __init__(self, engine: Engine, me: str, agents: Sequence[str], ttl: float) -> None:
        self.engine = engine
        self.me = me
        self.agents = list(agents)
        self.ttl = ttl
        self.claims = 0
        """Leases claimed by this daemon so far."""
        self.evicted = 0
        """Stalled sessions this daemon had the server end (see `_evict_stalled`)."""

    def register(self) -> None:
        """Make sure every agent has a lease row, and refuse a daemon id already live."""
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    sa.text(
                        "INSERT INTO cluster_leases (agent, owner, epoch, expires_at) "
                        "SELECT a, NULL, 0, now() FROM unnest(CAST(:agents AS text[])) AS a "
                        "ON CONFLICT (agent) DO NOTHING"
                    ),
                    {"agents": self.agents},
                )
                live = connection.execute(
                    sa.text(
                        "SELECT pid, host FROM cluster_daemons WHERE daemon = :me "
                        "AND expires_at > now()"
                    ),
                    {"me": self.me},
                ).first()
                this = (socket.gethostname(), os.getpid())
                if live is not None and (live.host, live.pid) != this:
                    raise StoreError(
                        f"cluster daemon id {self.me!r} is in use by a live daemon (pid "
                        f"{live.pid} on {live.host}); give each daemon its own "
                        "`cluster: {daemon_id: ...}` or leave it unset (host-pid)"
                    )
                self._alive(connection)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cluster: cannot register daemon {self.me!r}: {exc}") from exc

    def cycle(
        self,
        idle: Callable[[str], bool],
        before: Collection[str],
        releasing: Collection[str] = (),
    ) -> CycleResult:
        """One renew / rebalance / claim pass (see the module); `idle` says which held
        agents may be given up, `before` which agents were held before, `releasing` the
        surplus the daemon stopped acting for since the last cycle (released first)."""
        with self.engine.begin() as connection:
            self._alive(connection)
            if releasing:
                self._release(connection, list(releasing))
            live = int(
                connection.execute(
                    sa.text("SELECT count(*) FROM cluster_daemons WHERE expires_at > now()")
                ).scalar_one()
            )
            share = math.ceil(len(self.agents) / max(live, 1))
            evicted = self._evict_stalled(connection)
            if evicted:
                self.evicted += evicted
                log.warning("cluster: ended %d stalled session(s) holding lease locks", evicted)
            held = self._renew(connection)
            surplus = [agent for agent in sorted(held) if idle(agent)][: max(len(held) - share, 0)]
            claimed = self._claim(connection, share - len(held)) if len(held) < share else {}
            gained = {agent: epoch for agent, (epoch, _previous) in claimed.items()}
            held.update(gained)
        # Held before, by another daemon or by this one before its lease lapsed (what it
        # kept in memory may include writes that were then fenced): read it again.
        inherited = {agent for agent, (_, previous) in claimed.items() if previous is not None}
        return CycleResult(held, gained, inherited, surplus, set(before) - set(held), live)

    def leave(self, agents: Collection[str]) -> None:
        """Hand `agents` back and say this daemon is gone (a graceful stop)."""
        with self.engine.begin() as connection:
            if agents:
                self._release(connection, list(agents))
            connection.execute(
                sa.text("DELETE FROM cluster_daemons WHERE daemon = :me"), {"me": self.me}
            )

    def _alive(self, connection: Connection) -> None:
        # started_at changes only when another process takes the id over.
        connection.execute(
            sa.text(
                "INSERT INTO cluster_daemons (daemon, host, pid, started_at, seen_at, "
                "expires_at) VALUES (:me, :host, :pid, now(), now(), "
                "now() + make_interval(secs => :ttl)) ON CONFLICT (daemon) DO UPDATE SET "
                "seen_at = now(), expires_at = EXCLUDED.expires_at, host = EXCLUDED.host, "
                "pid = EXCLUDED.pid, started_at = CASE WHEN cluster_daemons.pid = "
                "EXCLUDED.pid THEN cluster_daemons.started_at ELSE now() END"
            ),
            {"me": self.me, "host": socket.gethostname(), "pid": os.getpid(), "ttl": self.ttl},
        )

    def _evict_stalled(self, connection: Connection) -> int:
        """End the sessions that have held a lock on the lease table for longer than a
        TTL. A live daemon's transactions take milliseconds (statement_timeout is half a
        TTL); one that old belongs to a daemon cut off in the middle of a transaction.
        idle_in_transaction_session_timeout does not always catch it: a stream cut
        between two messages of one request (an executemany's Binds before its Sync)
        leaves the server waiting without the timer armed, and its share lock on the
        lease rows would keep every claimer (SKIP LOCKED) off those agents for as long
        as the network stalls. Only row-locking sessions (FOR SHARE, UPDATE) are ended,
        never a reader. Ending the session rolls its transaction back, so nothing
        of it is written; the daemon sees an error when it wakes."""
        rows = connection.execute(
            sa.text(
                "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity AS a "
                "WHERE a.pid <> pg_backend_pid() AND a.datname = current_database() "
                "AND a.xact_start < now() - make_interval(secs => :ttl) "
                "AND EXISTS (SELECT 1 FROM pg_locks AS l WHERE l.pid = a.pid "
                "AND l.relation = 'cluster_leases'::regclass "
                "AND l.mode IN ('RowShareLock', 'RowExclusiveLock'))"
            ),
            {"ttl": self.ttl},
        ).all()
        return len(rows)

    def _renew(self, connection: Connection) -> dict[str, int]:
        rows = connection.execute(
            sa.text(
                "UPDATE cluster_leases SET expires_at = now() + make_interval(secs => :ttl) "
                "WHERE owner = :me AND expires_at > now() AND agent = ANY(:agents) "
                "RETURNING agent, epoch"
            ),
            {"me": self.me, "ttl": self.ttl, "agents": self.agents},
        )
        return {row.agent: int(row.epoch) for row in rows}

    def _release(self, connection: Connection, agents: list[str]) -> None:
        # Expired now, owner kept for the record: the next claimer bumps the epoch.
        connection.execute(
            sa.text(
                "UPDATE cluster_leases SET expires_at = now() "
                "WHERE owner = :me AND agent = ANY(:agents)"
            ),
            {"me": self.me, "agents": agents},
        )

    def _claim(self, connection: Connection, wanted: int) -> dict[str, tuple[int, str | None]]:
        rows = connection.execute(
            sa.text(
                "WITH free AS (SELECT agent, owner, expires_at FROM cluster_leases "
                "WHERE agent = ANY(:agents) AND (owner IS NULL OR expires_at <= now()) "
                "ORDER BY expires_at, agent LIMIT :wanted FOR UPDATE SKIP LOCKED), "
                "taken AS (UPDATE cluster_leases AS l SET owner = :me, epoch = l.epoch + 1, "
                "expires_at = now() + make_interval(secs => :ttl), claimed_at = clock_timestamp() "
                "FROM free WHERE l.agent = free.agent "
                "RETURNING l.agent, l.epoch, l.claimed_at, free.owner AS previous_owner, "
                "free.expires_at AS previous_expired_at) "
                "INSERT INTO cluster_lease_history (agent, epoch, owner, previous_owner, "
                "previous_expired_at, claimed_at) SELECT agent, epoch, :me, previous_owner, "
                "previous_expired_at, claimed_at FROM taken "
                "RETURNING agent, epoch, previous_owner"
            ),
            {"agents": self.agents, "wanted": wanted, "me": self.me, "ttl": self.ttl},
        )
        gained = {row.agent: (int(row.epoch), row.previous_owner) for row in rows}
        self.claims += len(gained)
        return gained


def local_deadline(started: float, ttl: float) -> float:
    """The monotonic instant past which a lease renewed in a cycle that started at
    `started` is no longer trusted locally."""
    return started + ttl * (1 - GUARD_MARGIN)
