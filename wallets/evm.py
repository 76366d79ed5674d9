"""The EVM signer: EIP-1559 transactions and EIP-191 / EIP-712 messages."""

from __future__ import annotations

import copy
import logging
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes
from pydantic import BaseModel, ConfigDict

from config.errors import SignerError
from wallets._secrets import Secret, _reveal
from wallets.authorization import (
    Authorization,
    AuthorizationVerifier,
    evm_message_digest,
    evm_tx_digest,
)
from wallets.base import Signer
from wallets.hd import evm_address

log = logging.getLogger(__name__)


class SignedEvmTransaction(BaseModel):
    """A signed EIP-1559 transaction, ready to journal and broadcast."""

    model_config = ConfigDict(frozen=True)

    raw: bytes
    tx_hash: bytes
    digest: bytes
    sender: str


class SignedEvmMessage(BaseModel):
    """An EIP-191 / EIP-712 signature (65 bytes, v in {27, 28})."""

    model_config = ConfigDict(frozen=True)

    digest: bytes
    signature: bytes
    signer: str


class EvmSigner(Signer[dict[str, Any], SignedEvmTransaction]):
    """Signs for one agent's EVM account, only with a matching authorization."""

    __slots__ = ("__key", "_address", "_agent", "_verifier")

    def __init__(self, agent: str, key: Secret, verifier: AuthorizationVerifier) -> None:
        if not isinstance(verifier, AuthorizationVerifier):
            raise SignerError("an EvmSigner needs the policy engine's AuthorizationVerifier")
        self.__key = key
        self._agent = agent
        self._address = evm_address(key)
        self._verifier = verifier

    @property
    def agent(self) -> str:
        """The agent this signer signs for."""
        return self._agent

    @property
    def address(self) -> str:
        """The EIP-55 address."""
        return self._address

    def sign(
        self, unsigned: dict[str, Any], authorization: Authorization | None
    ) -> SignedEvmTransaction:
        """Sign an unsigned EIP-1559 transaction dict (as eth_account takes it)."""
        # A private deep copy: what is hashed, checked and signed cannot change underneath.
        tx = copy.deepcopy(dict(unsigned))
        sender = tx.pop("from", None)
        if sender is not None and str(sender).lower() != self._address.lower():
            raise SignerError(
                f"refused to sign for agent {self._agent!r}: the transaction is from {sender}, "
                f"not from this agent's address {self._address}"
            )
        digest = evm_tx_digest(tx)
        self._verifier.check(authorization, agent=self._agent, digest=digest)
        signed = Account.sign_transaction(tx, _reveal(self.__key))
        raw = bytes(signed.raw_transaction)
        if bytes(TypedTransaction.from_bytes(HexBytes(raw)).hash()) != digest:
            raise SignerError(
                "internal error: the signed transaction differs from the authorized one"
            )
        log.debug("agent %s signed EVM tx %s", self._agent, signed.hash.hex())
        return SignedEvmTransaction(
            raw=raw, tx_hash=bytes(signed.hash), digest=digest, sender=self._address
        )

    def sign_message(
        self, message: SignableMessage, authorization: Authorization | None
    ) -> SignedEvmMessage:
        """Sign an EIP-191 message (``encode_defunct``) or EIP-712 data (``encode_typed_data``)."""
        if not isinstance(message, SignableMessage):
            raise SignerError(
                f"expected an eth_account SignableMessage, got {type(message).__name__}"
            )
        digest = evm_message_digest(message)
        self._verifier.check(authorization, agent=self._agent, digest=digest)
        signed = Account.unsafe_sign_hash(digest, _reveal(self.__key))
        log.debug("agent %s signed EVM message digest 0x%s", self._agent, digest.hex())
        return SignedEvmMessage(
            digest=digest, signature=bytes(signed.signature), signer=self._address
        )

    def __repr__(self) -> str:
        return f"EvmSigner(agent={self._agent!r}, address={self._address})"
