"""``pay_many``: several payments, possibly on several chains, made all-or-nothing.

It executes as an escrow plan (HTLC, ``agents/cross_chain.py``): each leg's lock is shown
to the policies as a ``swap_leg`` and signed through the gate. One leg alone needs no
escrow and becomes a ``transfer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from agents.actions.base import (
    ActionResult,
    AgentNames,
    EscrowLock,
    Executors,
    Kind,
    Payment,
    PlanChecker,
    PlanModel,
    array_schema,
    object_schema,
    plan_lock,
    through_escrow,
)
from agents.actions.transfer import Transfer
from policies.actions import ConfidenceEvidence

if TYPE_CHECKING:
    from agents.resolver import Resolver

MAX_LEGS = 4


class PayMany(PlanModel):
    """Several payments, possibly on several chains, made all-or-nothing."""

    kind: Literal["pay_many"]
    legs: tuple[Payment, ...] = Field(min_length=1, max_length=MAX_LEGS)


class PayManyKind(Kind[PayMany]):
    """Payments that all happen or none do, through the escrow coordinator."""

    name = "pay_many"
    model = PayMany
    proposes = ("swap_leg",)
    prompt = (
        '- several payments, all or nothing: {"kind": "pay_many", "legs": [{"chain": CHAIN, '
        '"asset": ASSET, "amount": AMOUNT, "counterparty": NAME}, ...]}'
    )

    def schema(self, names: AgentNames) -> list[dict[str, Any]]:
        payments = names.payments()
        if not payments:
            return []
        return [object_schema(PayMany, {"legs": array_schema(PayMany, "legs", payments)})]

    def describe(self, action: PayMany) -> str:
        return "pay all-or-nothing " + ", ".join(leg.describe() for leg in action.legs)

    def check(self, action: PayMany, where: str, checker: PlanChecker) -> None:
        for index, leg in enumerate(action.legs):
            checker.payment(f"{where}.legs.{index}", leg)

    def simplest(self, action: PayMany) -> PlanModel:
        # One payment is all-or-nothing by itself and needs no escrow.
        if len(action.legs) == 1:
            return Transfer(kind="transfer", **action.legs[0].model_dump())
        return action

    async def execute(
        self, action: PayMany, plan_id: str, evidence: ConfidenceEvidence, executors: Executors
    ) -> ActionResult:
        return await through_escrow(action, plan_id, evidence, executors)


def propose(action: PayMany, evidence: ConfidenceEvidence, resolver: Resolver) -> list[EscrowLock]:
    """One escrow lock per leg, in leg order (the coordinator's leg indices)."""
    return [plan_lock(leg, leg.counterparty, evidence, resolver) for leg in action.legs]


KIND = PayManyKind()
