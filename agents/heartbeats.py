"""Agent heartbeats: the daemon writes one row per agent after each tick, so `status`
(another process) can show ticks, the next tick and the last result."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine as SqlEngine

metadata = sa.MetaData()
agent_heartbeats = sa.Table(
    "agent_heartbeats",
    metadata,
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("last_tick_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("next_tick_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ticks", sa.Integer, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_result", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
)


@dataclass(frozen=True)
class Heartbeat:
    """The last thing the daemon said about one agent."""

    agent: str
    last_tick_at: datetime | None
    next_tick_at: datetime | None
    ticks: int
    failures: int
    last_result: str
    pid: int


def beat(engine: SqlEngine, heartbeat: Heartbeat) -> None:
    """Replace the heartbeat of `heartbeat.agent`."""
    values = {**heartbeat.__dict__, "pid": heartbeat.pid or os.getpid()}
    with engine.begin() as connection:
        connection.execute(
            agent_heartbeats.delete().where(agent_heartbeats.c.agent == heartbeat.agent)
        )
        connection.execute(agent_heartbeats.insert().values(**values))


def heartbeats(engine: SqlEngine) -> dict[str, Heartbeat]:
    """Every agent's last heartbeat."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(agent_heartbeats)).all()
    return {row.agent: Heartbeat(**row._asdict()) for row in rows}
