"""Small per-agent state of the daemon: heartbeats, written after each tick so `status`
(another process) can show ticks, the next tick, the last result and balances; and scripted
planners' positions, saved once a plan is taken and before any of it is executed, so a
restart skips a plan rather than doing it twice."""

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
    sa.Column("balances", sa.Text, nullable=False, server_default=""),
)

planner_cursors = sa.Table(
    "planner_cursors",
    metadata,
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)


def load_cursor(engine: SqlEngine, agent: str) -> int:
    """Where `agent`'s scripted planner stopped (0 if it never ran)."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(planner_cursors.c.position).where(planner_cursors.c.agent == agent)
        ).first()
    return int(row[0]) if row else 0


def load_cursors(engine: SqlEngine, agents: list[str]) -> dict[str, int]:
    """Where each of `agents`' scripted planners stopped (0 if it never ran), in one read."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(planner_cursors.c.agent, planner_cursors.c.position).where(
                planner_cursors.c.agent.in_(agents)
            )
        ).all()
    found = {row.agent: int(row.position) for row in rows}
    return {agent: found.get(agent, 0) for agent in agents}


def save_cursor(engine: SqlEngine, agent: str, position: int) -> None:
    """Record that `agent`'s scripted planner has taken its plans up to `position`."""
    with engine.begin() as connection:
        connection.execute(planner_cursors.delete().where(planner_cursors.c.agent == agent))
        connection.execute(planner_cursors.insert().values(agent=agent, position=position))


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
    balances: str = ""
    """What the agent last observed, e.g. "1.5 ETH on arb, 2 SOL on sol"."""


def beat(engine: SqlEngine, *beats: Heartbeat) -> None:
    """Replace the heartbeats of the given agents, in one transaction."""
    if not beats:
        return
    rows = [{**item.__dict__, "pid": item.pid or os.getpid()} for item in beats]
    with engine.begin() as connection:
        connection.execute(
            agent_heartbeats.delete().where(agent_heartbeats.c.agent.in_([b.agent for b in beats]))
        )
        connection.execute(agent_heartbeats.insert(), rows)


def heartbeats(engine: SqlEngine) -> dict[str, Heartbeat]:
    """Every agent's last heartbeat."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(agent_heartbeats)).all()
    return {row.agent: Heartbeat(**row._asdict()) for row in rows}
