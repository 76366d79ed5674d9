"""The one way from an unsigned transaction to signed bytes.

Every caller (single payments, escrow locks, claims, refunds) signs here, and the signers
below refuse anything without an :class:`~wallets.authorization.Authorization` minted by
the policy engine for the exact digest.
"""

from __future__ import annotations

from collections.abc import Sequence

from solders.keypair import Keypair

from chains.base import EvmUnsignedTx, SolanaUnsignedTx, UnsignedTx
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

    `co_signers` are seeds of one-off Solana keys that must sign too (a fresh escrow
    account's key); EVM transactions have none.
    """
    if isinstance(unsigned, EvmUnsignedTx):
        return wallet.evm_signer(verifier).sign(unsigned.tx, authorization).raw
    if isinstance(unsigned, SolanaUnsignedTx):
        keypairs = [Keypair.from_seed(seed) for seed in co_signers]
        return bytes(wallet.solana_signer(verifier).sign(unsigned.message, authorization, keypairs))
    raise SignerError(f"no signer for {type(unsigned).__name__}")
