"""The one way from an unsigned transaction to signed bytes.

Every caller (single payments, escrow locks, claims, refunds) signs here, and the signers
below refuse anything without an :class:`~wallets.authorization.Authorization` minted by
the policy engine for the exact digest.
"""

from __future__ import annotations

from collections.abc import Sequence

from chains.base import UnsignedTx
from chains.families import family_of_unsigned
from config.errors import SignerError
from wallets.authorization import Authorization, AuthorizationVerifier
from wallets.operator import AgentWallet


def sign(
    wallet: AgentWallet,
    verifier: AuthorizationVerifier,
    unsigned: UnsignedTx,
    authorization: Authorization,
    co_signers: Sequence[bytes] = (),
) -> bytes:
    """Raw signed bytes of `unsigned` by `wallet`, checked against `authorization`.

    The family that owns `unsigned` signs it. `co_signers` are seeds of one-off keys
    that must sign too (a fresh escrow account's key), for families whose transactions
    have several signers.
    """
    family = family_of_unsigned(unsigned)
    if family is None:
        raise SignerError(f"no signer for {type(unsigned).__name__}")
    return family.sign(wallet, verifier, unsigned, authorization, co_signers)
