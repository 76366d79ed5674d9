"""The Solana signer: legacy and v0 messages."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction

from config.errors import SignerError
from wallets._secrets import Secret, _reveal
from wallets.authorization import Authorization, AuthorizationVerifier, solana_message_bytes
from wallets.base import Signer
from wallets.hd import ed25519_public_key

log = logging.getLogger(__name__)

SolanaMessage = Message | MessageV0
SignedSolanaTransaction = Transaction | VersionedTransaction


class SolanaSigner(Signer[SolanaMessage, SignedSolanaTransaction]):
    """Signs for one agent's Solana account, only with a matching authorization."""

    __slots__ = ("__key", "_address", "_agent", "_verifier")

    def __init__(self, agent: str, key: Secret, verifier: AuthorizationVerifier) -> None:
        if not isinstance(verifier, AuthorizationVerifier):
            raise SignerError("a SolanaSigner needs the policy engine's AuthorizationVerifier")
        self.__key = key
        self._agent = agent
        self._address = Pubkey(ed25519_public_key(key))
        self._verifier = verifier

    @property
    def agent(self) -> str:
        """The agent this signer signs for."""
        return self._agent

    @property
    def address(self) -> str:
        """The base58 account address."""
        return str(self._address)

    @property
    def pubkey(self) -> Pubkey:
        """The account address as a solders Pubkey."""
        return self._address

    def sign(
        self,
        unsigned: SolanaMessage,
        authorization: Authorization | None,
        co_signers: Sequence[Keypair] = (),
    ) -> SignedSolanaTransaction:
        """Sign `unsigned`; `co_signers` are other required signers the caller holds
        (e.g. a fresh escrow account created in the same transaction).

        Every required signature must be present afterwards, or nothing is returned.
        """
        data = solana_message_bytes(unsigned)
        digest = hashlib.sha256(data).digest()
        self._verifier.check(authorization, agent=self._agent, digest=digest)
        signers = _required_signers(unsigned)
        if self._address not in signers:
            raise SignerError(
                f"refused to sign for agent {self._agent!r}: {self._address} is not a required "
                "signer of this message"
            )
        signatures = self._signatures(signers, data, co_signers)
        log.debug("agent %s signed Solana message %s", self._agent, signatures[0])
        if isinstance(unsigned, MessageV0):
            return VersionedTransaction.populate(unsigned, signatures)
        return Transaction.populate(unsigned, signatures)

    def _signatures(
        self, signers: list[Pubkey], data: bytes, co_signers: Sequence[Keypair]
    ) -> list[Signature]:
        keypairs = {keypair.pubkey(): keypair for keypair in co_signers}
        keypairs[self._address] = Keypair.from_seed(_reveal(self.__key))
        missing = [str(key) for key in signers if key not in keypairs]
        if missing:
            raise SignerError(
                f"cannot complete the transaction for agent {self._agent!r}: no keypair for "
                f"required signer(s) {', '.join(missing)}; pass them as co_signers"
            )
        return [keypairs[key].sign_message(data) for key in signers]

    def __repr__(self) -> str:
        return f"SolanaSigner(agent={self._agent!r}, address={self._address})"


def _required_signers(message: SolanaMessage) -> list[Pubkey]:
    count = message.header.num_required_signatures
    return list(message.account_keys[:count])
