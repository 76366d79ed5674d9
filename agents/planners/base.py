"""Planner interfaces: :class:`Planner`, and :class:`ModelPlanner` for language models.

The value types they exchange live in :mod:`agents.planners.types` and are re-exported
here.
"""

from __future__ import annotations

import abc
import contextlib
from typing import Any

from agents.planners._sampling import sample_plan
from agents.planners.types import (
    Balance,
    ChatMessage,
    Completion,
    Message,
    Observation,
    OpenSwap,
    Outcome,
    PendingApproval,
    PlanResult,
    Price,
)
from config.models import Deployment

__all__ = [
    "Balance",
    "ChatMessage",
    "Completion",
    "Message",
    "ModelPlanner",
    "Observation",
    "OpenSwap",
    "Outcome",
    "PendingApproval",
    "PlanResult",
    "Planner",
    "Price",
]


class Planner(abc.ABC):
    """Turns an observation into a plan. Never raises for bad model output: that becomes
    an empty plan with low confidence. :class:`~config.errors.PlannerError` only for a
    backend that cannot be reached or a model that is missing."""

    @abc.abstractmethod
    async def plan(self, observation: Observation) -> PlanResult:
        """The plan for this tick."""

    async def check(self) -> None:  # noqa: B027 - a documented no-op hook
        """Raise PlannerError if the backend or model is unavailable; default: no check."""

    async def aclose(self) -> None:  # noqa: B027 - a documented no-op hook
        """Release backend resources; default: nothing to release."""


class ModelPlanner(Planner):
    """A planner backed by a language model: subclasses supply :meth:`complete`; this
    class does the prompting, k samples, one repair per sample, and the evidence."""

    def __init__(self, deployment: Deployment, agent_name: str, *, samples: int) -> None:
        deployment.agent(agent_name)  # fail now, not at the first tick
        self.deployment = deployment
        self.agent_name = agent_name
        self.samples = samples

    async def plan(self, observation: Observation) -> PlanResult:
        """Sample k replies, repair each once if needed, and pick the majority plan."""
        return await sample_plan(self, observation)

    def decision(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Entered around all the calls of one decision (k samples and their repairs);
        a backend that can serve them as one run overrides it. Default: nothing."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    async def complete(self, messages: list[ChatMessage], schema: dict[str, Any]) -> Completion:
        """One reply to `messages`, constrained to `schema` where the backend can."""
