"""The digest an Authorization binds to, computed from an unsigned transaction.

These mirror what the wallets package signs: for EVM the EIP-2718 signing hash of the
typed transaction (keccak of its unsigned serialization), for Solana the SHA-256 of the
exact message bytes the ed25519 signature covers. If ``wallets.authorization`` exports
``evm_tx_digest`` / ``solana_message_digest``, those are the single source of truth and
are used instead, so a signer and an adapter can never disagree on a digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from importlib import import_module
from typing import Any

from eth_account.typed_transactions.typed_transaction import TypedTransaction
from solders.message import Message, MessageV0, to_bytes_versioned


def _own_evm_tx_digest(tx: dict[str, Any]) -> bytes:
    return bytes(TypedTransaction.from_dict(tx).hash())


def _own_solana_message_digest(message: Message | MessageV0) -> bytes:
    return hashlib.sha256(to_bytes_versioned(message)).digest()


def _wallets(name: str) -> Callable[..., bytes] | None:
    try:
        module = import_module("wallets.authorization")
    except ImportError:
        return None
    found = getattr(module, name, None)
    return found if callable(found) else None


def evm_tx_digest(tx: dict[str, Any]) -> bytes:
    """The signing hash of an EIP-1559 transaction dict."""
    function = _wallets("evm_tx_digest") or _own_evm_tx_digest
    return function(tx)


def solana_message_digest(message: Message | MessageV0) -> bytes:
    """SHA-256 of the bytes an ed25519 signature over `message` covers."""
    function = _wallets("solana_message_digest") or _own_solana_message_digest
    return function(message)
