"""Hand an authorized Solana message to the agent's Solana signer.

Only :func:`chains.signing.sign` reaches this (through the family); the signer checks
the Authorization against the message's digest before it signs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from solders.keypair import Keypair

from wallets.authorization import Authorization, AuthorizationVerifier
from wallets.operator import AgentWallet


def sign_solana(
    wallet: AgentWallet,
    verifier: AuthorizationVerifier,
    message: Any,
    authorization: Authorization,
    co_signers: Sequence[bytes],
) -> bytes:
    """Raw signed transaction of `message`; `co_signers` are seeds of one-off keys that
    sign too (a fresh escrow account's key)."""
    keypairs = [Keypair.from_seed(seed) for seed in co_signers]
    signer = wallet.solana_signer(verifier)
    return bytes(signer.sign(message, authorization, keypairs))
