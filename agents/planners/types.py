"""Values planners exchange: what a planner sees (:class:`Observation`), what a model
replies (:class:`Completion`) and what a planner returns (:class:`PlanResult`).

Fields typed :data:`Untrusted` hold text that someone outside the operator's control
chose: token names read from chain, memos, offers from other agents. The prompt builder
delimits, length-limits and labels them as data; nothing else may put them in a prompt.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from agents.actions.base import Leg
from agents.plan import Plan
from agents.tasks import Task, Untrusted
from config.types import Name
from policies.actions import ConfidenceEvidence


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Balance(_Model):
    """The agent's balance of one asset on one chain."""

    chain: Name
    asset: str
    amount: Decimal
    token_name: Untrusted | None = Field(
        default=None, description="The name the token contract reports, if any (untrusted)."
    )


class Price(_Model):
    """A USD price of an asset, where it came from and how old it is."""

    asset: str
    usd: Decimal
    source: str = Field(
        default="fixed", max_length=400, description="Each source, e.g. `chainlink 0x… on arb`."
    )
    age: int | None = Field(
        default=None, ge=0, description="Seconds since the oldest source published (None: fixed)."
    )


class OpenSwap(_Model):
    """A swap or atomic plan of this agent that has not settled yet."""

    id: str = Field(max_length=100)
    counterparty: Name
    give: Leg
    take: Leg
    state: str = Field(max_length=40)


class PendingApproval(_Model):
    """An action waiting for a human decision."""

    id: str = Field(max_length=100)
    summary: str = Field(max_length=300, description="Written by Covenant, not by others.")


class Outcome(_Model):
    """What happened to an earlier action."""

    at: datetime
    summary: str = Field(max_length=300, description="Written by Covenant, not by others.")
    ok: bool
    memo: Untrusted | None = Field(default=None, description="A memo seen on chain (untrusted).")


class Message(_Model):
    """An offer or note from another agent or outside party (always untrusted)."""

    sender: Name
    text: Untrusted


class SetAside(_Model):
    """A task the agent cannot act on now, left out of what the planner sees, and why."""

    task: str = Field(description="`source/id`.")
    reason: str = Field(max_length=300, description="Written by Covenant.")


class Observation(_Model):
    """Everything a planner may know at one tick."""

    agent: Name
    at: datetime
    mandate: str = Field(max_length=4000, description="The operator's instructions (trusted).")
    balances: tuple[Balance, ...] = ()
    prices: tuple[Price, ...] = ()
    open_swaps: tuple[OpenSwap, ...] = ()
    pending_approvals: tuple[PendingApproval, ...] = ()
    recent_outcomes: tuple[Outcome, ...] = ()
    messages: tuple[Message, ...] = ()
    tasks: tuple[Task, ...] = ()
    set_aside: tuple[SetAside, ...] = Field(
        default=(), description="Tasks kept from the planner (agents/screen.py); not prompted."
    )


class PlanResult(_Model):
    """A plan with the evidence for its confidence and the record the audit log keeps."""

    plan: Plan
    evidence: ConfidenceEvidence
    raw_outputs: tuple[str, ...] = Field(
        default=(), description="Every model reply, repair replies included, in order."
    )
    prompt_digest: str = Field(default="", description="SHA-256 of the canonical prompt.")
    errors: tuple[str, ...] = Field(default=(), description="Validation errors seen.")
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prefill_tokens: int | None = Field(
        default=None,
        description="Prompt tokens the backend evaluated over all calls (cached prefixes "
        "not counted); None unless every call's Completion said.",
    )


class Completion(_Model):
    """One model reply."""

    text: str
    token_logprobs: tuple[float, ...] | None = Field(
        default=None, description="Per-token log-probabilities, if the backend gave them."
    )
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prefill_tokens: int | None = Field(
        default=None,
        description="Of prompt_tokens, how many the backend evaluated rather than found in "
        "its cache; None when the backend cannot say (Ollama's prompt_eval_count includes "
        "cached tokens).",
    )


ChatMessage = dict[str, str]
"""One chat message: {"role": "system" | "user" | "assistant", "content": ...}."""
