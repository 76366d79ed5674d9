"""Hand an authorized EVM transaction to the agent's EVM signer.

Only :func:`chains.signing.sign` reaches this (through the family); the signer checks
the Authorization against the transaction's digest before it signs.
"""

from __future__ import annotations

from typing import Any

from wallets.authorization import Authorization, AuthorizationVerifier
from wallets.operator import AgentWallet


def sign_evm(
    wallet: AgentWallet,
    verifier: AuthorizationVerifier,
    tx: dict[str, Any],
    authorization: Authorization,
) -> bytes:
    """Raw signed bytes of the EIP-1559 transaction `tx`."""
    return wallet.evm_signer(verifier).sign(tx, authorization).raw
