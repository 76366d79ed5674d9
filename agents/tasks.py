"""Tasks an agent can see: the invoices, swap offers and work items outside parties put
in its inbox (``agents/sources/``, or the daemon's swap desk), and the type of every text
such parties chose.

A task carries an id so that a plan can name it ("pay invoice inv-17") and the policies
can pay it once (DuplicateGuard keys a payment that settles a task on the task, not on
its amount). Everything in a task is untrusted: the structured fields are validated
(names, decimal amounts), the memo is only ever shown to the model as labelled data.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.types import Name, PositiveAmount

Untrusted = Annotated[str, Field(max_length=10_000)]
"""Text from outside the operator's control; the prompt treats it as data only."""

TaskId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
"""A task's id as its source gives it; short and plain, so it can name the task in a plan."""

SourceName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]


class OfferLeg(BaseModel):
    """One side of a swap offer: an amount of an asset on a chain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain: Name
    asset: str = Field(max_length=16)
    amount: PositiveAmount


class Task(BaseModel):
    """An item of work an outside party put in the agent's inbox: an invoice to pay, a
    swap offer to accept, or a task. The structured fields are checked (names, decimal
    amounts); whether to act on it is the mandate's decision, and the memo is untrusted.

    An offer's legs are written from the agent's side, as a ``swap`` action writes them:
    `give` is what the agent would lock for `payee`, `take` what it would receive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: TaskId
    kind: Literal["invoice", "offer", "task"] = "invoice"
    source: SourceName = Field(description="The source it came from.")
    payee: Name | None = Field(
        default=None, description="Address-book name to be paid (an offer's counterparty)."
    )
    chain: Name | None = None
    asset: str | None = Field(default=None, max_length=16)
    amount: PositiveAmount | None = None
    give: OfferLeg | None = Field(default=None, description="An offer: what the agent gives.")
    take: OfferLeg | None = Field(default=None, description="An offer: what it receives.")
    memo: Untrusted | None = Field(default=None, description="Free text (untrusted).")

    @model_validator(mode="after")
    def _legs_only_on_offers(self) -> Task:
        if (self.kind == "offer") != (self.give is not None and self.take is not None):
            raise ValueError(
                f"{self.kind} {self.id}: an offer states both `give` and `take` (the agent's "
                "side), and no other kind of task has them"
            )
        if self.kind == "offer" and (self.chain, self.asset, self.amount) != (None, None, None):
            raise ValueError(
                f"offer {self.id}: its amounts go in `give` and `take`, not in "
                "`chain`/`asset`/`amount` (which would be ambiguous)"
            )
        return self

    @property
    def reference(self) -> str:
        """`source/id`: what names the task across sources (the policies' key)."""
        return f"{self.source}/{self.id}"
