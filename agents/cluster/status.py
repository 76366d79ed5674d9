"""What `status` and `cluster status` show of a cluster: leases and live daemons, read
from the store with the database's clock (the one leases are judged by)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine


@dataclass(frozen=True, slots=True)
class Lease:
    """One agent's lease as the store holds it."""

    agent: str
    owner: str | None
    epoch: int
    expires_at: datetime
    live: bool
    """Unexpired by the database's clock now."""


@dataclass(frozen=True, slots=True)
class Daemon:
    """A daemon of the cluster and the agents it holds now."""

    daemon: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    expires_at: datetime
    live: bool
    agents: tuple[str, ...]


def leases(engine: Engine) -> dict[str, Lease]:
    """Every agent's lease (none before a cluster daemon first ran)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT agent, owner, epoch, expires_at, expires_at > now() AS live "
                "FROM cluster_leases ORDER BY agent"
            )
        ).all()
    return {
        row.agent: Lease(row.agent, row.owner, int(row.epoch), row.expires_at, bool(row.live))
        for row in rows
    }


def daemons(engine: Engine, *, include_gone: bool = False) -> list[Daemon]:
    """The live daemons (all that ever registered, with `include_gone`), each with the
    agents whose unexpired lease it holds."""
    held: dict[str, list[str]] = {}
    for lease in leases(engine).values():
        if lease.live and lease.owner is not None:
            held.setdefault(lease.owner, []).append(lease.agent)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT daemon, host, pid, started_at, seen_at, expires_at, "
                "expires_at > now() AS live FROM cluster_daemons ORDER BY daemon"
            )
        ).all()
    return [
        Daemon(
            row.daemon,
            row.host,
            int(row.pid),
            row.started_at,
            row.seen_at,
            row.expires_at,
            bool(row.live),
            tuple(held.get(row.daemon, ())),
        )
        for row in rows
        if include_gone or row.live
    ]
