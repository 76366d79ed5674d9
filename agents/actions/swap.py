"""``swap``: give one leg to a counterparty and take another from it, atomically.

It executes as an escrow plan (HTLC, ``agents/cross_chain.py``): each lock is shown to
the policies as a ``swap_leg`` and signed through the gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from agents.actions.base import (
    ActionResult,
    AgentNames,
    EscrowLock,
    Executors,
    Kind,
    Leg,
    PlanChecker,
    PlanModel,
    object_schema,
    plan_lock,
    through_escrow,
)
from config.types import Name, plain_amount
from policies.actions import ConfidenceEvidence

if TYPE_CHECKING:
    from agents.resolver import Resolver


class Swap(PlanModel):
    """Give one leg to `counterparty` and take another from it, atomically (HTLC)."""

    kind: Literal["swap"]
    counterparty: Name
    give: Leg
    take: Leg


class SwapKind(Kind[Swap]):
    """A swap with another agent, through the escrow coordinator."""

    name = "swap"
    model = Swap
    proposes = ("swap_leg",)
    prompt = (
        '- swap: {"kind": "swap", "counterparty": NAME, "give": {"chain": CHAIN, "asset": '
        'ASSET, "amount": AMOUNT}, "take": {"chain": CHAIN, "asset": ASSET, "amount": AMOUNT}}'
    )

    def schema(self, names: AgentNames) -> list[dict[str, Any]]:
        if not names.payment_fields():
            return []  # nobody can be paid: no leg could be given
        legs = {"anyOf": names.legs()}
        narrowed = {"counterparty": {"enum": names.parties}, "give": legs, "take": legs}
        return [object_schema(Swap, narrowed)]

    def describe(self, action: Swap) -> str:
        give, take = action.give, action.take
        return (
            f"swap {plain_amount(give.amount)} {give.asset} on {give.chain} for "
            f"{plain_amount(take.amount)} {take.asset} on {take.chain} with {action.counterparty}"
        )

    def check(self, action: Swap, where: str, checker: PlanChecker) -> None:
        checker.counterparty(f"{where}.counterparty", action.counterparty, action.give.chain)
        checker.leg(f"{where}.give", action.give)
        checker.leg(f"{where}.take", action.take)
        if action.give.chain == action.take.chain and action.give.asset == action.take.asset:
            checker.problems.append(f"{where}: give and take are the same asset on one chain")

    async def execute(
        self, action: Swap, plan_id: str, evidence: ConfidenceEvidence, executors: Executors
    ) -> ActionResult:
        return await through_escrow(action, plan_id, evidence, executors)


def propose(action: Swap, evidence: ConfidenceEvidence, resolver: Resolver) -> EscrowLock:
    """The lock this side gives; the counterparty's lock is its own to propose."""
    return plan_lock(action.give, action.counterparty, evidence, resolver)


KIND = SwapKind()
