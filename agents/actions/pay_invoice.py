"""``pay_invoice``: pay one invoice the agent sees, by naming it.

The model writes only the invoice's id, picked from an enum of the invoices in this
observation that the agent could pay (payee, chain, asset and precision all within its
names); the amount and the payee come from the invoice itself, so the model can neither
mistype nor inflate them. Small models choose far better between "pay inv-17" and
"do nothing" than they compose a transfer.

It executes as one transfer through the gate; the policies see a ``transfer`` that names
the task it settles (``ProposedAction.task``), which DuplicateGuard pays once.
"""

from __future__ import annotations

from typing import Any, Literal

from agents.actions.base import (
    ActionResult,
    AgentNames,
    Executors,
    Kind,
    Payment,
    PlanChecker,
    PlanModel,
    check_named_task,
    object_schema,
)
from agents.actions.transfer import propose
from agents.tasks import Task, TaskId
from config.types import plain_amount
from policies.actions import ConfidenceEvidence


class PayInvoice(PlanModel):
    """Pay the open invoice `task` for the amount, to the payee, that it states."""

    kind: Literal["pay_invoice"]
    task: TaskId


def payment_of(task: Task) -> Payment | None:
    """The payment an invoice asks for, or None if it does not state all of it."""
    if task.kind != "invoice" or None in (task.payee, task.chain, task.asset, task.amount):
        return None
    return Payment.model_validate(
        {
            "chain": task.chain,
            "asset": task.asset,
            "amount": plain_amount(task.amount) if task.amount is not None else None,
            "counterparty": task.payee,
        }
    )


def why_unpayable(task: Task, names: AgentNames) -> str | None:
    """Why the agent cannot pay `task` (None: it can), in the checker's words."""
    try:
        payment = payment_of(task)
    except ValueError as exc:  # e.g. an asset symbol no chain has
        return f"invoice {task.id} does not name a payment the agent can make ({exc})"
    if payment is None:
        return f"{task.kind} {task.id} does not state a payee, chain, asset and amount"
    checker = PlanChecker(names)
    checker.payment(f"invoice {task.id}", payment)
    return "; ".join(checker.problems) or None


class PayInvoiceKind(Kind[PayInvoice]):
    """One invoice, named by id; amount and payee pinned by the invoice."""

    name = "pay_invoice"
    model = PayInvoice
    proposes = ("transfer",)
    prompt = '- pay an open invoice: {"kind": "pay_invoice", "task": INVOICE_ID}'
    idempotent = True

    def schema(self, names: AgentNames) -> list[dict[str, Any]]:
        payable = [
            task.id for task in (names.tasks or {}).values() if why_unpayable(task, names) is None
        ]
        if not payable:
            return []
        return [object_schema(PayInvoice, {"task": {"enum": payable}})]

    def describe(self, action: PayInvoice) -> str:
        return f"pay invoice {action.task}"

    def check(self, action: PayInvoice, where: str, checker: PlanChecker) -> None:
        check_named_task(action.task, where, checker, "invoice", why_unpayable)

    async def execute(
        self, action: PayInvoice, plan_id: str, evidence: ConfidenceEvidence, executors: Executors
    ) -> ActionResult:
        task = executors.tasks.get(action.task)
        payment = payment_of(task) if task is not None else None
        if task is None or payment is None:
            return ActionResult("error", f"invoice {action.task} is not open any more")
        return await executors.payments.run(
            lambda executor: propose(payment, plan_id, executor, task=task.reference), evidence
        )


KIND = PayInvoiceKind()
