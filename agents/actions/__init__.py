"""The action kinds a plan may hold, one module each; adding a kind is one module here
and one line in :data:`KINDS`.

Everything else follows from the registry: the :class:`~agents.plan.Plan` model's
action union, the planner's schema and prompt, the checks against the deployment and
how each action executes (``agents/agent.py``).
"""

from __future__ import annotations

from typing import Any

from agents.actions import accept_offer, pay_invoice, pay_many, swap, transfer
from agents.actions.base import Kind, PlanModel
from config.models import Deployment

KINDS: dict[str, Kind[Any]] = {
    kind.name: kind
    for kind in (
        transfer.KIND,
        swap.KIND,
        pay_many.KIND,
        pay_invoice.KIND,
        accept_offer.KIND,
    )
}


_BY_MODEL = {kind.model: kind for kind in KINDS.values()}


def kind_of(action: PlanModel) -> Kind[Any]:
    """The registered kind of a validated plan action."""
    return _BY_MODEL[type(action)]


def validate_deployment_actions(deployment: Deployment) -> list[str]:
    """`config validate`'s check that every agent's `actions:` names registered kinds."""
    known = ", ".join(KINDS)
    return [
        f"agents[{position}].actions[{index}]: unknown action kind {name!r}; use one of: {known}"
        for position, agent in enumerate(deployment.agents)
        for index, name in enumerate(agent.actions)
        if name not in KINDS
    ]
