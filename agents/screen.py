"""Set aside the tasks an agent cannot act on now, before its planner is asked.

A small model chooses well between "pay inv-17" and "do nothing", and badly between many
choices of which some can only fail. So an invoice or offer is kept from the planner when
the agent's balance cannot cover it, or when one of its policies would deny it whatever
transaction carried it (a payee off the allowlist, an amount above a per-transaction
limit, a task already settled: :meth:`policies.base.Policy.screen`). Each one set aside
is recorded with its reason in the tick's audit entry.

This narrows choices and weakens nothing: whatever is planned is still judged by every
policy (:meth:`~policies.engine.PolicyEngine.evaluate`), and the chain still refuses an
overspend. A task the screen lets through may still be denied.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from agents.planners.types import Observation, SetAside
from agents.tasks import OfferLeg, Task
from policies.actions import Intent, Receives

Screen = Callable[[Intent], str | None]
"""Why a policy would deny the intent, or None (``PolicyEngine.screen``)."""


def screened(observation: Observation, screen: Screen) -> Observation:
    """`observation` without the tasks the agent cannot act on now; those are listed in
    ``set_aside`` with the reason."""
    balances = {(b.chain, b.asset): b.amount for b in observation.balances}
    kept: list[Task] = []
    aside = list(observation.set_aside)
    for task in observation.tasks:
        reason = _why_not(task, observation.agent, balances, screen)
        if reason is None:
            kept.append(task)
        else:
            aside.append(SetAside(task=task.reference, reason=reason[:300]))
    return observation.model_copy(update={"tasks": tuple(kept), "set_aside": tuple(aside)})


def intent_of(task: Task, agent: str) -> Intent | None:
    """What acting on `task` would do (an invoice: a transfer; an offer: the leg the
    agent locks), or None when it states no payment."""
    spent = _spent(task)
    if spent is None or task.payee is None:
        return None
    return Intent(
        agent=agent,
        kind="transfer" if task.kind == "invoice" else "swap_leg",
        chain=spent.chain,
        asset=spent.asset,
        amount=spent.amount,
        recipient=task.payee,
        task=task.reference,
        receives=Receives(**task.take.model_dump()) if task.take is not None else None,
    )


def _why_not(
    task: Task, agent: str, balances: dict[tuple[str, str], Decimal], screen: Screen
) -> str | None:
    spent = _spent(task)
    if spent is None:
        return None  # nothing to pay: the planner sees it (and may only decline it)
    held = balances.get((spent.chain, spent.asset))
    if held is not None and held < spent.amount:
        # An unknown balance (unreadable this tick) keeps the task: the chain decides.
        return f"balance {held} {spent.asset} on {spent.chain} is below {spent.amount}"
    try:
        intent = intent_of(task, agent)
    except ValueError:  # e.g. an asset symbol no chain has: the plan checks explain it
        return None
    return screen(intent) if intent is not None else None


def _spent(task: Task) -> OfferLeg | None:
    """What the agent would give up for `task`, if it says."""
    if task.kind == "offer":
        return task.give
    chain, asset, amount = task.chain, task.asset, task.amount
    if task.kind == "invoice" and chain is not None and asset is not None and amount is not None:
        return OfferLeg(chain=chain, asset=asset, amount=amount)
    return None
