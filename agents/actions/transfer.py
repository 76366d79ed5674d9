"""``transfer``: pay one counterparty on one chain, in one transaction.

The policies see it as a ``transfer``; it executes as one transaction through the gate
(:class:`agents.payments.PaymentExecutor`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from agents.actions.base import (
    ActionResult,
    AgentNames,
    Executors,
    Kind,
    Payment,
    PlanChecker,
    object_schema,
)
from agents.resolver import intent_for
from chains.base import UnsignedTx
from policies.actions import ConfidenceEvidence, ProposedAction

if TYPE_CHECKING:
    from agents.payments import PaymentExecutor


class Transfer(Payment):
    """Pay `amount` of `asset` on `chain` to the address-book entry `counterparty`."""

    kind: Literal["transfer"]


class TransferKind(Kind[Transfer]):
    """One payment, one transaction."""

    name = "transfer"
    model = Transfer
    proposes = ("transfer",)
    prompt = (
        '- pay: {"kind": "transfer", "chain": CHAIN, "asset": ASSET, "amount": AMOUNT, '
        '"counterparty": NAME}'
    )

    def schema(self, names: AgentNames) -> list[dict[str, Any]]:
        return [object_schema(Transfer, fields) for fields in names.payment_fields()]

    def describe(self, action: Transfer) -> str:
        return f"pay {action.describe()}"

    def check(self, action: Transfer, where: str, checker: PlanChecker) -> None:
        checker.payment(where, action)

    async def execute(
        self, action: Transfer, plan_id: str, evidence: ConfidenceEvidence, executors: Executors
    ) -> ActionResult:
        return await executors.payments.run(
            lambda executor: propose(action, plan_id, executor), evidence
        )


async def propose(
    payment: Payment, plan_id: str, executor: PaymentExecutor, task: str | None = None
) -> tuple[ProposedAction, UnsignedTx]:
    """The unsigned transaction of `payment` and the action the policies judge (which
    names `task`, as ``source/id``, if the payment settles one)."""
    resolver = executor.resolver
    asset = resolver.asset(payment.chain, payment.asset)
    to = resolver.address(payment.counterparty, payment.chain)
    base = resolver.base_units(payment.amount, asset)
    sender = executor.wallet.address(executor.deployment, payment.chain)
    unsigned = await executor.adapters[payment.chain].build(intent_for(asset, to, base), sender)
    action = ProposedAction(
        agent=executor.agent,
        plan_id=plan_id,
        kind="transfer",
        chain=payment.chain,
        asset=payment.asset,
        amount=payment.amount,
        amount_base_units=base,
        recipient=payment.counterparty,
        recipient_address=to,
        digest=unsigned.digest,
        task=task,
    )
    return action, unsigned


KIND = TransferKind()
