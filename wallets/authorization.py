"""Authorizations: the only thing that lets a signer sign.

The policy engine owns an :class:`AuthorizationMint` (an Ed25519 key generated in
memory at start, never stored) and mints an :class:`Authorization` for one agent, one
exact digest and a short lifetime. Signers hold only the mint's public
:class:`AuthorizationVerifier`; each recomputes the digest of what it is asked to sign
and refuses unless a valid authorization names that digest, that agent and is unexpired.

Authorizations minted together share one signature: the mint signs the root of a Merkle
tree over their encodings (RFC 6962 style: leaves and inner nodes hashed under distinct
prefixes), and each authorization carries the sibling hashes from its leaf to the root.
One Ed25519 signature per batch instead of one per evaluation is what lets the engine
authorize tens of thousands of actions a second; checking one costs the same as before
(one signature verification plus a few SHA-256). A batch of one has an empty proof.

Digests, so the chain and policy layers compute exactly what the signers check:

* EVM transaction: the EIP-1559 signing hash, ``keccak(0x02 || rlp(fields))``
  (:func:`evm_tx_digest`).
* EVM message (EIP-191, including EIP-712 typed data): ``keccak(0x19 || version ||
  header || body)`` of the ``SignableMessage`` (:func:`evm_message_digest`).
* Solana: ``sha256`` of the exact message bytes the Ed25519 signatures cover, i.e.
  ``bytes(message)`` for a legacy ``Message`` and ``0x80 || bytes`` for ``MessageV0``
  (:func:`solana_message_digest`).
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_account.messages import SignableMessage
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from solders.message import Message, MessageV0, to_bytes_versioned

from config.errors import SignerError

MAX_TTL = timedelta(hours=1)
_DOMAIN = b"covenant/authorization/v2\x00"
_ROOT_DOMAIN = b"covenant/authorization-root/v2\x00"
_LEAF, _NODE = b"\x00", b"\x01"
MAX_BATCH = 4096
"""The most authorizations under one signature (keeps proofs at 12 hashes or fewer)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

LeaseEpochs = Callable[[str], int | None]
"""Cluster mode: the lease epoch this daemon holds an agent at, or None if it may not
act for the agent now (lease lost, or its deadline passed on this daemon's clock)."""


class Authorization(BaseModel):
    """Permission for `agent` to sign exactly `digest` until `expires_at`.

    Bytes are hex in JSON, so an authorization can travel to a signer in another process.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="hex", val_json_bytes="hex"
    )

    agent: str = Field(min_length=1, max_length=64)
    digest: bytes = Field(min_length=32, max_length=32)
    expires_at: AwareDatetime
    nonce: bytes = Field(min_length=16, max_length=16)
    proof: tuple[Annotated[bytes, Field(min_length=32, max_length=32)], ...] = Field(
        default=(), max_length=12, description="Sibling hashes from this leaf to the root."
    )
    position: int = Field(default=0, ge=0, description="Bit i: the i-th sibling is left.")
    signature: bytes = Field(min_length=64, max_length=64, description="Over the root.")
    epoch: int = Field(
        default=0,
        ge=0,
        description="The agent's lease epoch when minted (cluster mode; 0 without it).",
    )

    def signed_bytes(self) -> bytes:
        """The canonical encoding of this authorization: domain, length-prefixed fields."""
        return _encode(
            _agent_field(self.agent),
            self.digest,
            _expiry_field(self.expires_at),
            self.nonce,
            self.epoch,
        )

    def root(self) -> bytes:
        """The Merkle root this authorization's proof leads to (what the mint signed)."""
        node = _hash(_LEAF, self.signed_bytes())
        for level, sibling in enumerate(self.proof):
            if self.position >> level & 1:
                node = _hash(_NODE, sibling + node)
            else:
                node = _hash(_NODE, node + sibling)
        return node


def _hash(prefix: bytes, data: bytes) -> bytes:
    return hashlib.sha256(prefix + data).digest()


def _encode(
    agent_field: bytes, digest: bytes, expiry_field: bytes, nonce: bytes, epoch: int
) -> bytes:
    # Takes the encoded agent and expiry so a batch encodes the ones it shares once.
    # The epoch is signed too: a copy moved to a newer epoch would not verify.
    return b"".join((agent_field, digest, expiry_field, nonce, struct.pack(">Q", epoch)))


def _agent_field(agent: str) -> bytes:
    """The domain and the length-prefixed agent name: what every encoding starts with."""
    name = agent.encode("utf-8")
    return _DOMAIN + struct.pack(">H", len(name)) + name


def _expiry_field(expires_at: datetime) -> bytes:
    return struct.pack(">q", (expires_at - _EPOCH) // timedelta(microseconds=1))


_FROM_MINT = object()
"""Only :class:`AuthorizationMint` holds this, so every verifier a signer can be given
belongs to a mint, and constructing a mint is the one thing to audit (policies/engine.py)."""


class AuthorizationVerifier:
    """The public half of a mint: checks authorizations, cannot create them.

    Obtain it from :attr:`AuthorizationMint.verifier`; it cannot be built from an
    arbitrary public key, so no one can pair a home-made key with a signer.
    """

    __slots__ = ("_epochs", "_public_key")

    def __init__(
        self, public_key: bytes, *, _from_mint: object = None, epochs: LeaseEpochs | None = None
    ) -> None:
        if _from_mint is not _FROM_MINT:
            raise SignerError(
                "an AuthorizationVerifier comes only from AuthorizationMint.verifier (the "
                "policy engine's mint); it cannot be built from a public key"
            )
        self._public_key = Ed25519PublicKey.from_public_bytes(public_key)
        self._epochs = epochs

    @property
    def public_key(self) -> bytes:
        """The mint's Ed25519 public key."""
        return self._public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    def check(
        self,
        authorization: Authorization | None,
        *,
        agent: str,
        digest: bytes,
        now: datetime | None = None,
    ) -> None:
        """Raise :class:`SignerError` unless `authorization` allows `agent` to sign `digest`."""
        if not isinstance(authorization, Authorization):
            raise SignerError(f"refused to sign for agent {agent!r}: no authorization was given")
        try:
            if authorization.position >> len(authorization.proof):
                raise InvalidSignature  # a position beyond the proof names no leaf
            self._public_key.verify(authorization.signature, _ROOT_DOMAIN + authorization.root())
        except InvalidSignature:
            raise SignerError(
                f"refused to sign for agent {agent!r}: the authorization is not signed by "
                "this runtime's policy engine"
            ) from None
        _check_fields(authorization, agent=agent, digest=digest, now=now or datetime.now(UTC))
        if self._epochs is not None:
            _check_epoch(authorization, self._epochs(agent))


def _check_epoch(auth: Authorization, held: int | None) -> None:
    """Cluster mode: sign only under the lease epoch the authorization was minted at, and
    only while this daemon holds the agent (an authorization minted before the agent was
    lost and won back must not outlive the epochs in between)."""
    if held is None:
        raise SignerError(
            f"refused to sign for agent {auth.agent!r}: this daemon does not hold the "
            "agent's lease now (lost, or its deadline passed on this daemon's clock)"
        )
    if auth.epoch != held:
        raise SignerError(
            f"refused to sign for agent {auth.agent!r}: the authorization was minted under "
            f"lease epoch {auth.epoch} and the agent is now at epoch {held}; ask the policy "
            "engine again"
        )


def _check_fields(auth: Authorization, *, agent: str, digest: bytes, now: datetime) -> None:
    if auth.agent != agent:
        raise SignerError(
            f"refused to sign for agent {agent!r}: the authorization is for agent {auth.agent!r}"
        )
    if auth.expires_at <= now:
        raise SignerError(
            f"refused to sign for agent {agent!r}: the authorization expired at "
            f"{auth.expires_at.isoformat()}; ask the policy engine again"
        )
    if auth.digest != digest:
        raise SignerError(
            f"refused to sign for agent {agent!r}: the authorization is for digest "
            f"0x{auth.digest.hex()}, not 0x{digest.hex()} of what was submitted"
        )


class AuthorizationMint:
    """Creates authorizations with an in-memory Ed25519 key that is never persisted.

    Only the policy engine constructs one; everything else gets its ``verifier``.
    """

    __slots__ = ("__key", "_epochs", "_verifier")

    def __init__(self, *, epochs: LeaseEpochs | None = None) -> None:
        """With `epochs` (cluster mode) each authorization carries its agent's lease
        epoch, none is minted for an agent this daemon may not act for, and the verifier
        refuses one whose epoch is not the agent's epoch at signing."""
        self.__key = Ed25519PrivateKey.generate()
        raw = self.__key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._epochs = epochs
        self._verifier = AuthorizationVerifier(raw, _from_mint=_FROM_MINT, epochs=epochs)

    @property
    def verifier(self) -> AuthorizationVerifier:
        """The public verifier to hand to signers."""
        return self._verifier

    def mint(self, agent: str, digest: bytes, ttl: timedelta) -> Authorization:
        """Authorize `agent` to sign exactly `digest` for `ttl` (at most one hour)."""
        return self.mint_many([(agent, digest)], ttl)[0]

    def mint_many(self, grants: Sequence[tuple[str, bytes]], ttl: timedelta) -> list[Authorization]:
        """Authorize each (agent, digest) of `grants` for `ttl`, under one signature."""
        if not timedelta(0) < ttl <= MAX_TTL:
            raise SignerError(f"authorization ttl {ttl} must be positive and at most {MAX_TTL}")
        if not 0 < len(grants) <= MAX_BATCH:
            raise SignerError(f"a batch has 1 to {MAX_BATCH} authorizations, got {len(grants)}")
        for _, digest in grants:
            if len(digest) != 32:
                raise SignerError(f"a digest has 32 bytes, got {len(digest)}")
        expires_at = datetime.now(UTC) + ttl
        # The fields a batch shares are encoded once (a batch is mostly a few agents).
        expiry = _expiry_field(expires_at)
        names = {agent for agent, _ in grants}
        agent_fields = {agent: _agent_field(agent) for agent in names}
        epochs = {agent: self._epoch(agent) for agent in names}
        randomness = os.urandom(16 * len(grants))
        nonces = [randomness[at : at + 16] for at in range(0, len(randomness), 16)]
        leaves = [
            _hash(_LEAF, _encode(agent_fields[agent], digest, expiry, nonce, epochs[agent]))
            for (agent, digest), nonce in zip(grants, nonces, strict=True)
        ]
        root, proofs, positions = _merkle(leaves)
        signature = self.__key.sign(_ROOT_DOMAIN + root)
        return [
            Authorization(
                agent=agent,
                digest=digest,
                expires_at=expires_at,
                nonce=nonce,
                proof=tuple(proof),
                position=position,
                signature=signature,
                epoch=epochs[agent],
            )
            for (agent, digest), nonce, proof, position in zip(
                grants, nonces, proofs, positions, strict=True
            )
        ]

    def _epoch(self, agent: str) -> int:
        if self._epochs is None:
            return 0
        epoch = self._epochs(agent)
        if epoch is None:
            # The local guard: the lease deadline passed on this daemon's monotonic
            # clock (or the lease is gone), so nothing more is minted for the agent
            # even before the database would refuse its writes.
            raise SignerError(
                f"not minting for agent {agent!r}: this daemon does not hold its lease "
                "now (lost, or its deadline passed on this daemon's clock)"
            )
        return epoch

    def __repr__(self) -> str:
        return "AuthorizationMint(<in-memory key>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("an AuthorizationMint cannot be pickled; its key never leaves memory")


def _merkle(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]], list[int]]:
    """The root over `leaves`, and each leaf's proof and position bits.

    Nodes pair up left to right; an odd last node moves up unpaired (no duplication,
    so no two leaf lists share a root), adding nothing to its leaves' proofs. The node
    above node j is node j // 2 of the next level, promoted or not.
    """
    levels = [leaves]
    while len(levels[-1]) > 1:
        level = levels[-1]
        above = [_hash(_NODE, level[at] + level[at + 1]) for at in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            above.append(level[-1])
        levels.append(above)
    proofs: list[list[bytes]] = []
    positions: list[int] = []
    for index in range(len(leaves)):
        proof: list[bytes] = []
        position = 0
        node = index
        for level in levels[:-1]:
            sibling = node ^ 1
            if sibling < len(level):
                if node & 1:  # the sibling is on the left
                    position |= 1 << len(proof)
                proof.append(level[sibling])
            node >>= 1
        proofs.append(proof)
        positions.append(position)
    return levels[-1][0], proofs, positions


def evm_tx_digest(tx: dict[str, Any]) -> bytes:
    """The EIP-1559 signing hash of an unsigned typed transaction dict (eth_account form)."""
    _require_eip1559(tx)
    try:
        return bytes(TypedTransaction.from_dict(dict(tx)).hash())
    except (TypeError, ValueError, KeyError) as exc:
        raise SignerError(f"cannot encode the EVM transaction {tx!r}: {exc}") from exc


def _require_eip1559(tx: dict[str, Any]) -> None:
    kind = tx.get("type", 2)
    if kind not in (2, "0x2", "0x02") or "maxFeePerGas" not in tx or "chainId" not in tx:
        raise SignerError(
            "only EIP-1559 transactions with a chainId are signed (type 2, maxFeePerGas, "
            f"maxPriorityFeePerGas, chainId); got keys {sorted(tx)}"
        )


def evm_message_digest(message: SignableMessage) -> bytes:
    """The EIP-191 hash of a message (``encode_defunct`` or ``encode_typed_data``)."""
    return bytes(keccak(b"\x19" + message.version + message.header + message.body))


def solana_message_bytes(message: Message | MessageV0) -> bytes:
    """The bytes Ed25519 signatures of a Solana transaction cover."""
    if isinstance(message, MessageV0):
        return bytes(to_bytes_versioned(message))
    if isinstance(message, Message):
        return bytes(message)
    raise SignerError(f"expected a solders Message or MessageV0, got {type(message).__name__}")


def solana_message_digest(message: Message | MessageV0) -> bytes:
    """sha256 of :func:`solana_message_bytes`."""
    return hashlib.sha256(solana_message_bytes(message)).digest()
