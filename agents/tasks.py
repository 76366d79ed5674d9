"""Tasks an agent can see: the invoices and work items outside parties put in its
inbox (``agents/sources/``), and the type of every text such parties chose.

A task carries an id so that a plan can name it ("pay invoice inv-17") and the policies
can pay it once (DuplicateGuard keys a payment that settles a task on the task, not on
its amount). Everything in a task is untrusted: the structured fields are validated
(names, decimal amounts), the memo is only ever shown to the model as labelled data.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from config.types import Name, PositiveAmount

Untrusted = Annotated[str, Field(max_length=10_000)]
"""Text from outside the operator's control; the prompt treats it as data only."""

TaskId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
"""A task's id as its source gives it; short and plain, so it can name the task in a plan."""

SourceName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]


class Task(BaseModel):
    """An item of work an outside party put in the agent's inbox: an invoice to pay, or a
    task. The structured fields are checked (names, decimal amounts); whether to act on it
    is the mandate's decision, and the memo is untrusted text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: TaskId
    kind: Literal["invoice", "task"] = "invoice"
    source: SourceName = Field(description="The source it came from.")
    payee: Name | None = Field(default=None, description="Address-book name to be paid.")
    chain: Name | None = None
    asset: str | None = Field(default=None, max_length=16)
    amount: PositiveAmount | None = None
    memo: Untrusted | None = Field(default=None, description="Free text (untrusted).")

    @property
    def reference(self) -> str:
        """`source/id`: what names the task across sources (the policies' key)."""
        return f"{self.source}/{self.id}"
