"""Turn one planned payment into a transaction, but only through the policy engine.

The order is the invariant: resolve the address-book name to an address (the model never
supplies one), build the unsigned transaction, describe it to the policies as a
:class:`~policies.actions.ProposedAction` carrying its digest, and sign only through the
one gate (:func:`agents.gate.authorize_and_sign`) with the
:class:`~wallets.authorization.Authorization` the engine mints for that digest. The
signed bytes are journaled before they are broadcast (:func:`chains.sender.send`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agents.actions.base import ActionResult
from agents.gate import Signed, authorize_and_sign
from agents.held import HeldActions
from agents.resolver import Resolver
from chains.base import (
    ChainAdapter,
    TxExpired,
    UnsignedTx,
)
from chains.journal import TxJournal
from chains.sender import send
from config.errors import ChainError, CovenantError, SignerError
from config.models import Deployment
from policies.actions import ConfidenceEvidence, ProposedAction
from policies.base import AuthorityClaims, PolicyContext
from policies.engine import Denied, PolicyEngine
from wallets.operator import AgentWallet

log = logging.getLogger(__name__)

Proposal = Callable[["PaymentExecutor"], Awaitable[tuple[ProposedAction, UnsignedTx]]]
"""An action kind's ``propose`` bound to its action: the executor's chains and wallet in,
the proposed action and its unsigned transaction out."""


@dataclass
class PaymentExecutor:
    """Executes the one-transaction actions of one agent (today: transfers)."""

    agent: str
    deployment: Deployment
    wallet: AgentWallet
    engine: PolicyEngine
    adapters: dict[str, ChainAdapter]
    journal: TxJournal
    resolver: Resolver
    held: HeldActions
    claims: AuthorityClaims | None = None
    confirm_timeout: float = 60.0

    async def run(self, propose: Proposal, evidence: ConfidenceEvidence) -> ActionResult:
        """The one-transaction strategy: `propose` (the action kind's) builds the
        transaction and its :class:`ProposedAction`; then authorize and sign through the
        gate, journal, send and track it."""
        try:
            action, unsigned = await propose(self)
        except CovenantError as exc:
            return ActionResult("error", f"could not build the transaction: {exc}")
        return await self._decide(action, unsigned, evidence)

    async def resume_approved(self) -> list[ActionResult]:
        """Re-submit held actions whose approval a person has since decided."""
        results = []
        for held in self.held.waiting(self.agent):
            result = await self._decide(held.action, held.unsigned, held.evidence)
            if result.state == "queued":
                continue  # still waiting for a person
            self.held.close(held.approval_id, result.state)
            results.append(result)
        return results

    async def _decide(
        self, action: ProposedAction, unsigned: UnsignedTx, evidence: ConfidenceEvidence | None
    ) -> ActionResult:
        ctx = self.engine.context(
            self.agent,
            plan_id=action.plan_id,
            evidence=evidence,
            claims=self.claims,
            plan_actions=(action,),
        )
        try:
            outcome = await authorize_and_sign(self.engine, self.wallet, action, unsigned, ctx)
        except SignerError as exc:
            await self.engine.failed(action, ctx, str(exc))
            return ActionResult("failed", str(exc), action)
        if isinstance(outcome, Signed):
            return await self._send(action, unsigned, outcome.raw, ctx)
        if isinstance(outcome, Denied):
            # Never signed: give its nonce back, or the next payment waits behind a gap.
            await self.adapters[action.chain].abandon(unsigned)
            return ActionResult("denied", outcome.reason, action, policy=outcome.policy)
        if outcome.approval_id is not None:
            self.held.hold(outcome.approval_id, action, unsigned, evidence)
        return ActionResult(
            "queued",
            outcome.reason,
            action,
            policy=outcome.policy,
            approval_id=outcome.approval_id,
        )

    async def _send(
        self,
        action: ProposedAction,
        unsigned: UnsignedTx,
        signed: bytes,
        ctx: PolicyContext,
    ) -> ActionResult:
        adapter = self.adapters[action.chain]
        try:
            status = await send(
                adapter, self.journal, unsigned, signed, timeout=self.confirm_timeout
            )
        except TxExpired as exc:
            await self.engine.failed(action, ctx, f"blockhash expired: {exc}")
            return ActionResult("failed", f"expired before it landed: {exc}", action)
        except (ChainError, SignerError) as exc:
            tx_id = adapter.tx_id(signed)
            entry = self.journal.get(tx_id)
            if entry is not None and entry.may_land:
                return self._in_doubt(action, tx_id, exc)
            await self.engine.failed(action, ctx, str(exc))
            return ActionResult("failed", str(exc), action)
        if status.state in ("final", "included"):
            await self.engine.executed(action, ctx)
            return ActionResult("executed", action.summary(), action, tx_id=status.tx_id)
        await self.engine.failed(action, ctx, status.reason or status.state)
        return ActionResult(
            "failed", f"{status.state}: {status.reason}", action, tx_id=status.tx_id
        )

    def _in_doubt(self, action: ProposedAction, tx_id: str, exc: CovenantError) -> ActionResult:
        # The endpoint went away or the wait ran out after the bytes may have reached a
        # node: the transaction can still land. Releasing its reservation now would let
        # the limits count less than the chain may spend, so it stays reserved (counted)
        # and the journal, which `reconcile` follows, decides what became of it.
        log.warning(
            "agent %s: %s is journaled and may still land; its spend stays counted: %s",
            self.agent,
            tx_id,
            exc,
        )
        return ActionResult(
            "pending",
            f"sent, outcome not known yet ({exc}); its spend stays counted",
            action,
            tx_id=tx_id,
        )
