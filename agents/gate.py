"""The one gate from a proposed action to a signer.

Everything the agents sign passes here, and nothing else in the product reaches a
signer (``tests/agents/test_one_gate.py`` scans for it):

- a single transaction: :func:`authorize_and_sign` asks the policy engine about the
  :class:`~policies.actions.ProposedAction` and signs only with the
  :class:`~wallets.authorization.Authorization` an :class:`Authorized` outcome carries;
  a :class:`Denied` or :class:`Queued` outcome comes back unsigned;
- an escrow plan: the coordinator builds each step itself, so it asks in two halves:
  :func:`authorize_lock` (the policies judge the lock like a transfer) or
  :func:`authorize_settlement` (claims and refunds of a plan whose lock was authorized),
  then signs with the callable :func:`escrow_signer` gives its party.

Whatever signs, the signers in ``wallets/`` check the authorization against the exact
digest, so even a caller that skipped this module could not sign without the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chains.atomic.wallet import SignTx
from chains.base import UnsignedTx
from chains.signing import sign
from config.errors import PolicyViolation
from policies.actions import ProposedAction
from policies.base import PolicyContext
from policies.engine import Authorized, Denied, PolicyEngine, Queued
from wallets.authorization import Authorization
from wallets.operator import AgentWallet


@dataclass(frozen=True)
class Signed:
    """The engine authorized the action and the wallet signed its transaction."""

    raw: bytes
    outcome: Authorized


async def authorize_and_sign(
    engine: PolicyEngine,
    wallet: AgentWallet,
    action: ProposedAction,
    unsigned: UnsignedTx,
    ctx: PolicyContext,
) -> Signed | Denied | Queued:
    """Evaluate `action` (whose digest is `unsigned`'s) and sign only if authorized.

    A :class:`~config.errors.SignerError` from the signer propagates: the caller tells
    the engine the authorized action failed.
    """
    outcome = await engine.evaluate(action, ctx)
    if not isinstance(outcome, Authorized):
        return outcome
    return Signed(_sign(engine, wallet, unsigned, outcome.authorization), outcome)


async def authorize_lock(
    engine: PolicyEngine, action: ProposedAction, ctx: PolicyContext
) -> Authorization:
    """The authorization for an escrow lock, or :class:`PolicyViolation` saying why not."""
    outcome = await engine.evaluate(action, ctx)
    if isinstance(outcome, Authorized):
        return outcome.authorization
    if isinstance(outcome, Denied):
        raise PolicyViolation(f"denied by {outcome.policy}: {outcome.reason}")
    raise PolicyViolation(
        f"needs approval ({outcome.reason}); an escrow lock cannot wait for a person "
        "yet, so this plan winds down: lower the amount or raise the threshold"
    )


def authorize_settlement(
    engine: PolicyEngine, agent: str, plan_id: str, unsigned: UnsignedTx
) -> Authorization:
    """The authorization for a claim or refund of a plan whose lock the engine allowed."""
    return engine.authorize_settlement(agent, plan_id, unsigned.digest)


def escrow_signer(engine: PolicyEngine, wallet: AgentWallet) -> SignTx:
    """`wallet`'s signing for its coordinator: only with what the engine minted."""

    def sign_step(
        unsigned: UnsignedTx, authorization: Authorization, co_signers: Sequence[bytes]
    ) -> bytes:
        return _sign(engine, wallet, unsigned, authorization, co_signers)

    return sign_step


def _sign(
    engine: PolicyEngine,
    wallet: AgentWallet,
    unsigned: UnsignedTx,
    authorization: Authorization,
    co_signers: Sequence[bytes] = (),
) -> bytes:
    # The signers trust only this engine's verifier: an authorization minted elsewhere
    # (or for another digest) is refused there, not here.
    return sign(wallet, engine.verifier, unsigned, authorization, co_signers)
