"""``accept_offer``: accept one swap offer the agent sees, by naming it.

As with ``pay_invoice``, the model writes only the offer's id, picked from an enum of the
offers in this observation the agent could accept (counterparty, chains, assets and
precision within its names); both legs come from the offer itself, so the model can
neither mistype a leg nor turn the offer around. Whether the price is fair is the
mandate's question, which the prompt helps with by stating each offer's rate.

It executes as the ``swap`` the offer describes, through the escrow coordinator; the
lock the agent gives is shown to the policies as a ``swap_leg`` naming the offer
(``ProposedAction.task``), which DuplicateGuard accepts once.
"""

from __future__ import annotations

from typing import Any, Literal

from agents.actions.base import (
    ActionResult,
    AgentNames,
    Executors,
    Kind,
    PlanChecker,
    PlanModel,
    check_named_task,
    object_schema,
    through_escrow,
)
from agents.actions.swap import KIND as SWAP
from agents.actions.swap import Swap
from agents.tasks import Task, TaskId
from config.types import plain_amount
from policies.actions import ConfidenceEvidence


class AcceptOffer(PlanModel):
    """Accept the open swap offer `task` on the legs it states."""

    kind: Literal["accept_offer"]
    task: TaskId


def swap_of(task: Task) -> Swap | None:
    """The swap an offer describes, from the agent's side, or None if it is no offer."""
    if task.kind != "offer" or task.give is None or task.take is None or task.payee is None:
        return None
    return Swap.model_validate(
        {
            "kind": "swap",
            "counterparty": task.payee,
            "give": {**task.give.model_dump(), "amount": plain_amount(task.give.amount)},
            "take": {**task.take.model_dump(), "amount": plain_amount(task.take.amount)},
        }
    )


def why_unacceptable(task: Task, names: AgentNames) -> str | None:
    """Why the agent cannot accept `task` (None: it can), in the checker's words."""
    try:
        swap = swap_of(task)
    except ValueError as exc:  # e.g. an amount finer than the asset's decimals
        return f"offer {task.id} does not name a swap the agent can make ({exc})"
    if swap is None:
        return f"{task.kind} {task.id} is not a swap offer"
    checker = PlanChecker(names)
    SWAP.check(swap, f"offer {task.id}", checker)
    return "; ".join(checker.problems) or None


class AcceptOfferKind(Kind[AcceptOffer]):
    """One swap offer, named by id; both legs pinned by the offer."""

    name = "accept_offer"
    model = AcceptOffer
    proposes = ("swap_leg",)
    prompt = '- accept a swap offer: {"kind": "accept_offer", "task": OFFER_ID}'
    idempotent = True

    def schema(self, names: AgentNames) -> list[dict[str, Any]]:
        acceptable = [
            task.id
            for task in (names.tasks or {}).values()
            if why_unacceptable(task, names) is None
        ]
        if not acceptable:
            return []
        return [object_schema(AcceptOffer, {"task": {"enum": acceptable}})]

    def describe(self, action: AcceptOffer) -> str:
        return f"accept swap offer {action.task}"

    def check(self, action: AcceptOffer, where: str, checker: PlanChecker) -> None:
        check_named_task(
            action.task, where, checker, "offer", why_unacceptable, listed_kind="offer"
        )

    async def execute(
        self, action: AcceptOffer, plan_id: str, evidence: ConfidenceEvidence, executors: Executors
    ) -> ActionResult:
        task = executors.tasks.get(action.task)
        swap = swap_of(task) if task is not None else None
        if task is None or swap is None:
            return ActionResult("error", f"offer {action.task} is not open any more")
        return await through_escrow(swap, plan_id, evidence, executors, task=task.reference)


KIND = AcceptOfferKind()
