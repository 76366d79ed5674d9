"""Durable plan state: every plan, its legs and every step, written before it is sent."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection, Engine

from chains.atomic._tables import legs, now, plans, steps
from chains.atomic.base import Leg
from config.errors import AtomicityError

PlanKind = Literal["plan", "maker", "taker"]
TERMINAL = ("claimed", "refunded", "cancelled", "failed")
"""Plan states nothing more happens in: every leg claimed, refunded or never locked,
or (failed) an operator must look."""
OPEN_STEP = ("intent", "signed")


class PlanRecord(BaseModel):
    """A plan as journaled: terms, legs and where it stands. Holds no secret."""

    model_config = ConfigDict(frozen=True)

    plan_id: str
    agent: str
    kind: PlanKind
    state: str
    hashlock: bytes
    preimage_journaled: bool
    legs: tuple[Leg, ...]
    leg_states: tuple[str, ...] = ()
    counterparty: str | None = None
    offer: str | None = None
    reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        """True once nothing more will happen to this plan."""
        return self.state in TERMINAL

    def leg(self, index: int) -> Leg:
        """The leg with `index`."""
        for leg in self.legs:
            if leg.index == index:
                return leg
        raise AtomicityError(f"plan {self.plan_id} has no leg {index}")


class StepRecord(BaseModel):
    """One lock, claim or refund transaction of one leg, journaled before signing."""

    model_config = ConfigDict(frozen=True)

    id: int
    agent: str
    plan_id: str
    idx: int
    purpose: str
    tx_id: str | None
    status: str
    reason: str | None


class PlanStore:
    """Reads and writes the coordinator's tables; every write commits before it returns.

    Scoped to one `agent` (a coordinator's view), or to every agent (the CLI's view):
    two agents of one daemon that swap with each other journal the same plan id.
    """

    def __init__(self, engine: Engine, agent: str | None = None) -> None:
        self._engine = engine
        self.agent = agent

    def scoped(self, agent: str) -> PlanStore:
        """The same store seen by one agent."""
        return PlanStore(self._engine, agent)

    def _plan_key(self, table: sa.Table, plan_id: str) -> sa.ColumnElement[bool]:
        key = table.c.plan_id == plan_id
        return key & (table.c.agent == self.agent) if self.agent is not None else key

    def _agent_of(self, plan_id: str) -> str:
        if self.agent is not None:
            return self.agent
        return self.get(plan_id).agent

    def create(self, plan: PlanRecord) -> None:
        """Journal a new plan and its legs in one transaction."""
        stamp = now()
        with self._engine.begin() as connection:
            connection.execute(
                plans.insert().values(
                    plan_id=plan.plan_id,
                    agent=plan.agent,
                    kind=plan.kind,
                    state=plan.state,
                    hashlock=plan.hashlock.hex(),
                    preimage_journaled=plan.preimage_journaled,
                    counterparty=plan.counterparty,
                    offer=plan.offer,
                    reason=plan.reason,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
            for leg in plan.legs:
                connection.execute(
                    legs.insert().values(agent=plan.agent, plan_id=plan.plan_id, **_leg_row(leg))
                )

    def exists(self, plan_id: str) -> bool:
        """Whether `plan_id` is journaled (for this store's agent)."""
        query = sa.select(plans.c.plan_id).where(self._plan_key(plans, plan_id))
        with self._engine.connect() as connection:
            return connection.execute(query).first() is not None

    def get(self, plan_id: str) -> PlanRecord:
        """The plan `plan_id`; AtomicityError if it is not journaled, or if an unscoped
        store holds it for several agents."""
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(plans).where(self._plan_key(plans, plan_id)))
            found = rows.all()
            if not found:
                raise AtomicityError(f"no plan {plan_id!r} in the store; `swaps list` shows them")
            if len(found) > 1:
                agents = ", ".join(sorted(row.agent for row in found))
                raise AtomicityError(
                    f"plan {plan_id!r} is journaled by agents {agents}; name one with --agent"
                )
            return _plan(connection, found[0])

    def plans(self, *, agent: str | None = None, open_only: bool = False) -> list[PlanRecord]:
        """Plans, oldest first, of this store's agent (or `agent`), optionally only
        those not terminal."""
        query = sa.select(plans).order_by(plans.c.created_at, plans.c.plan_id)
        agent = agent or self.agent
        if agent is not None:
            query = query.where(plans.c.agent == agent)
        if open_only:
            query = query.where(plans.c.state.not_in(TERMINAL))
        with self._engine.connect() as connection:
            return [_plan(connection, row) for row in connection.execute(query).all()]

    def offers(self, *, to: str | None = None) -> builtins.list[PlanRecord]:
        """Swap offers of any agent of the store still waiting for an acceptance (by the
        DID `to`, if given), oldest first: the board on which two agents of one
        deployment meet, whichever daemon holds each (so it ignores this store's scope)."""
        query = (
            sa.select(plans)
            .where(plans.c.kind == "maker")
            .where(plans.c.state == "offered")
            .order_by(plans.c.created_at, plans.c.plan_id)
        )
        if to is not None:
            query = query.where(plans.c.counterparty == to)
        with self._engine.connect() as connection:
            return [_plan(connection, row) for row in connection.execute(query).all()]

    def unsettled(self, *, agent: str | None = None) -> builtins.list[PlanRecord]:
        """Terminal plans, oldest first, with a leg still stored as locked: one the
        counterparty may yet claim or refund (see ``Coordinator.follow``)."""
        locked = (
            sa.select(legs.c.plan_id)
            .where(legs.c.agent == plans.c.agent)
            .where(legs.c.plan_id == plans.c.plan_id)
            .where(legs.c.state == "locked")
        )
        query = (
            sa.select(plans)
            .where(plans.c.state.in_(TERMINAL))
            .where(locked.exists())
            .order_by(plans.c.created_at, plans.c.plan_id)
        )
        agent = agent or self.agent
        if agent is not None:
            query = query.where(plans.c.agent == agent)
        with self._engine.connect() as connection:
            return [_plan(connection, row) for row in connection.execute(query).all()]

    def set_state(self, plan_id: str, state: str, reason: str | None = None) -> None:
        """Move the plan to `state` (with the reason, kept if None)."""
        values: dict[str, Any] = {"state": state, "updated_at": now()}
        if reason is not None:
            values["reason"] = reason
        self._update(plans.update().where(self._plan_key(plans, plan_id)).values(**values))

    def set_leg(
        self, plan_id: str, index: int, *, state: str | None = None, locator: str | None = None
    ) -> None:
        """Update a leg's state and/or locator (the counterparty's escrow id)."""
        values = {
            key: value
            for key, value in (("state", state), ("locator", locator))
            if value is not None
        }
        key = self._plan_key(legs, plan_id) & (legs.c.idx == index)
        self._update(legs.update().where(key).values(**values))

    def add_step(self, plan_id: str, index: int, purpose: str) -> int:
        """Journal the intent to send `purpose` for a leg; returns the step id."""
        stamp, agent = now(), self._agent_of(plan_id)
        with self._engine.begin() as connection:
            result = connection.execute(
                steps.insert().values(
                    agent=agent,
                    plan_id=plan_id,
                    idx=index,
                    purpose=purpose,
                    status="intent",
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def step_signed(self, step_id: int, tx_id: str) -> None:
        """Record the id of the signed transaction of a step, before it is journaled."""
        self._update(
            steps.update()
            .where(steps.c.id == step_id)
            .values(tx_id=tx_id, status="signed", updated_at=now())
        )

    def finish_step(self, step_id: int, status: str, reason: str | None = None) -> None:
        """Close a step: final, failed or abandoned (never sent)."""
        self._update(
            steps.update()
            .where(steps.c.id == step_id)
            .values(status=status, reason=reason, updated_at=now())
        )

    def steps(
        self, plan_id: str, index: int | None = None, purpose: str | None = None
    ) -> builtins.list[StepRecord]:
        """Steps of a plan in the order they were journaled."""
        query = sa.select(steps).where(self._plan_key(steps, plan_id)).order_by(steps.c.id)
        if index is not None:
            query = query.where(steps.c.idx == index)
        if purpose is not None:
            query = query.where(steps.c.purpose == purpose)
        with self._engine.connect() as connection:
            return [StepRecord.model_validate(row._asdict()) for row in connection.execute(query)]

    def _update(self, statement: sa.Update) -> None:
        with self._engine.begin() as connection:
            connection.execute(statement)


def _leg_row(leg: Leg) -> dict[str, Any]:
    return {
        "idx": leg.index,
        "chain": leg.chain,
        "sender": leg.sender,
        "recipient": leg.recipient,
        "amount": str(leg.amount),
        "asset": leg.asset,
        "deadline": leg.deadline,
        "locator": leg.locator,
        "ours": leg.ours,
        "state": "planned",
    }


def _plan(connection: Connection, row: sa.Row[Any]) -> PlanRecord:
    key = (legs.c.plan_id == row.plan_id) & (legs.c.agent == row.agent)
    leg_rows = connection.execute(sa.select(legs).where(key).order_by(legs.c.idx)).all()
    plan_legs = tuple(
        Leg(
            index=leg.idx,
            chain=leg.chain,
            sender=leg.sender,
            recipient=leg.recipient,
            amount=int(leg.amount),
            asset=leg.asset,
            deadline=leg.deadline,
            locator=leg.locator or "",
            ours=leg.ours,
        )
        for leg in leg_rows
    )
    values = row._asdict()
    values["hashlock"] = bytes.fromhex(values["hashlock"])
    return PlanRecord(**values, legs=plan_legs, leg_states=tuple(leg.state for leg in leg_rows))
