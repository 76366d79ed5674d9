"""Escrow plans the engine allowed to lock funds, so it can authorize their settlement.

An all-or-nothing plan locks funds in hash-time-locked escrow; the policies judge each
lock like any other spend. Its later claims and refunds move only what is already in
escrow, to the recipient fixed at lock time or back to the agent, and a refund must
land even while the agent's breaker is open or it is halted, or the funds stay stuck.
So the engine authorizes a claim or refund of a plan exactly when it once authorized a
lock of that plan for that agent, and it remembers that durably across restarts.
"""

from __future__ import annotations

import sqlalchemy as sa

from policies._store import PolicyStore, to_us
from policies._tables import metadata
from policies.actions import ProposedAction
from policies.base import Clock

plan_grants = sa.Table(
    "plan_grants",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("plan_id", sa.String(128), nullable=False),
    sa.Column("granted_at_us", sa.BigInteger, nullable=False),
    sa.Index("ix_plan_grants_agent_plan", "agent", "plan_id"),
)


class PlanGrants:
    """The (agent, plan id) pairs whose escrow locks were authorized."""

    def __init__(self, store: PolicyStore | None, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._known: set[tuple[str, str]] = set()

    def stage(self, action: ProposedAction) -> None:
        """Record an escrow lock about to be authorized (written with its evaluation)."""
        if action.kind != "swap_leg":
            return
        self._known.add((action.agent, action.plan_id))
        if self._store is not None:
            row = {
                "digest": action.digest.hex(),
                "agent": action.agent,
                "plan_id": action.plan_id,
                "granted_at_us": to_us(self._clock.now()),
            }
            self._store.stage(plan_grants.insert(), row, always=False)

    def granted(self, agent: str, plan_id: str) -> bool:
        """Whether a lock of `plan_id` by `agent` was ever authorized."""
        if (agent, plan_id) in self._known:
            return True
        if self._store is None:
            return False
        found = self._store.read(
            sa.select(plan_grants.c.digest)
            .where(plan_grants.c.agent == agent, plan_grants.c.plan_id == plan_id)
            .limit(1)
        )
        if found:
            self._known.add((agent, plan_id))
        return bool(found)
