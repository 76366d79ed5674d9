"""The digest an Authorization binds to, computed from an unsigned transaction.

The wallets package owns the definition (the signer checks the same digest before it
signs), so the adapters use its functions and can never disagree with a signer: for EVM
the EIP-1559 signing hash, for Solana the SHA-256 of the exact message bytes signed.
"""

from __future__ import annotations

from wallets.authorization import evm_tx_digest, solana_message_digest

__all__ = ["evm_tx_digest", "solana_message_digest"]
