"""Operator controls on stored policy state: halts, breaker resets, listings.

Each change bumps the control version in the same transaction, so a running engine
picks it up within its control poll interval (default one second).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from config.errors import StoreError
from policies._store import PolicyStore, bump_control, from_us, to_us
from policies._tables import GLOBAL, breaker_state, kill_switches
from policies.builtin.breaker import RESET_REASON


class BreakerRow(BaseModel):
    """One agent's stored breaker state."""

    model_config = ConfigDict(frozen=True)

    agent: str
    state: str
    reason: str
    opened_at: datetime | None
    probes_granted: int
    failures: int


class Halt(BaseModel):
    """A kill switch that is on: `target` is an agent name or `*` for all."""

    model_config = ConfigDict(frozen=True)

    target: str
    reason: str
    halted_at: datetime


def halt(engine: Engine, target: str, reason: str, now: datetime) -> None:
    """Halt `target` (an agent name, or `*` for every agent)."""
    with _transaction(engine, f"halt {target!r}") as connection:
        connection.execute(kill_switches.delete().where(kill_switches.c.target == target))
        connection.execute(
            kill_switches.insert().values(target=target, reason=reason, halted_at_us=to_us(now))
        )
        bump_control(connection)


def resume(engine: Engine, target: str) -> bool:
    """Lift the halt on `target`; False if it was not halted."""
    with _transaction(engine, f"resume {target!r}") as connection:
        deleted = connection.execute(
            kill_switches.delete().where(kill_switches.c.target == target)
        ).rowcount
        bump_control(connection)
    return bool(deleted)


def halts(engine: Engine) -> list[Halt]:
    """Every halt in force."""
    rows = PolicyStore(engine).read(sa.select(kill_switches).order_by(kill_switches.c.target))
    return [Halt(target=r.target, reason=r.reason, halted_at=from_us(r.halted_at_us)) for r in rows]


def breakers(engine: Engine) -> list[BreakerRow]:
    """Every stored breaker, by agent."""
    rows = PolicyStore(engine).read(sa.select(breaker_state).order_by(breaker_state.c.agent))
    return [
        BreakerRow(
            agent=r.agent,
            state=r.state,
            reason=r.reason,
            opened_at=from_us(r.opened_at_us) if r.opened_at_us is not None else None,
            probes_granted=r.probes_granted,
            failures=r.failures,
        )
        for r in rows
    ]


def reset_breaker(engine: Engine, agent: str, now: datetime) -> bool:
    """Close `agent`'s breaker and clear its counters; False if it has none stored."""
    with _transaction(engine, f"reset the breaker of {agent!r}") as connection:
        updated = connection.execute(
            breaker_state.update()
            .where(breaker_state.c.agent == agent)
            .values(
                state="closed",
                reason=RESET_REASON,
                opened_at_us=None,
                probes_granted=0,
                probes_succeeded=0,
                failures=0,
                low_plans="[]",
                updated_at_us=to_us(now),
                version=breaker_state.c.version + 1,
                resets=breaker_state.c.resets + 1,
            )
        ).rowcount
        bump_control(connection)
    return bool(updated)


@contextmanager
def _transaction(engine: Engine, what: str) -> Iterator[sa.Connection]:
    try:
        with engine.begin() as connection:
            yield connection
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot {what}: {exc}; check the store url and permissions") from exc


__all__ = ["GLOBAL", "BreakerRow", "Halt", "breakers", "halt", "halts", "reset_breaker", "resume"]
