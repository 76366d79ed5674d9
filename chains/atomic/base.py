"""Values and interfaces of the atomic coordinator.

A *plan* is a set of *legs*, each a hash-time-locked transfer on one chain, all under
one SHA-256 hashlock. An :class:`HtlcChain` knows how to lock, claim, refund and read
one leg on its chain; the coordinator (:mod:`chains.atomic.coordinator`) decides when.
The coordinator never mints authorizations: an :data:`Authorize` callable injected by
the runtime asks the policy engine for one per transaction.
"""

from __future__ import annotations

import enum
import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from chains.base import ChainAdapter, UnsignedTx
from config.errors import AtomicityError
from config.margins import ChainMargin
from wallets.authorization import Authorization

Purpose = Literal["approve", "lock", "claim", "refund", "revoke"]
"""What a step of a leg sends: `approve` lets the escrow take exactly the leg's tokens
before its `lock` (an ERC-20 leg), `revoke` withdraws an approval a lock never used."""
PLAN_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{2,62}$"


class PlanRefused(AtomicityError):
    """A plan, offer or counterparty lock fails a safety check; nothing was sent."""


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Leg(_Value):
    """One hash-time-locked transfer: `sender` locks `amount` for `recipient` on `chain`.

    `locator` names the escrow on chain: the 32-byte HTLC id (hex) on EVM, the escrow
    account (base58) on Solana. `asset` is the ERC-20 address or the SPL mint (base58), or
    None for the native coin.
    """

    index: int = Field(ge=0, lt=16)
    chain: str
    sender: str
    recipient: str
    amount: int = Field(gt=0, description="Base units (wei, lamports, token units).")
    asset: str | None = None
    deadline: int = Field(gt=0, description="Unix seconds, compared with the chain clock.")
    locator: str
    ours: bool = Field(default=True, description="False for a counterparty's leg we watch.")


class LockState(enum.IntEnum):
    """Where an escrow stands on chain."""

    EMPTY = 0
    LOCKED = 1
    CLAIMED = 2
    REFUNDED = 3


class OnChainLock(_Value):
    """The terms an escrow records on chain, and its state."""

    state: LockState
    sender: str = ""
    recipient: str = ""
    amount: int = 0
    asset: str | None = None
    hashlock: bytes = b""
    deadline: int = 0

    def mismatch(self, leg: Leg, hashlock: bytes) -> str | None:
        """Why this escrow is not the lock `leg` describes, or None if it is."""
        expected = {
            "sender": normalized(leg.sender),
            "recipient": normalized(leg.recipient),
            "amount": leg.amount,
            "asset": normalized(leg.asset),
            "hashlock": hashlock,
            "deadline": leg.deadline,
        }
        actual = {
            "sender": normalized(self.sender),
            "recipient": normalized(self.recipient),
            "amount": self.amount,
            "asset": normalized(self.asset),
            "hashlock": self.hashlock,
            "deadline": self.deadline,
        }
        wrong = [key for key in expected if expected[key] != actual[key]]
        if not wrong:
            return None
        return ", ".join(
            f"{key} is {_show(actual[key])}, expected {_show(expected[key])}" for key in wrong
        )


def normalized(value: str | None) -> str | None:
    """An address or token as compared: EVM hex case-insensitively, the zero address as
    None ("native coin"), base58 (Solana) as written, since it is case-sensitive."""
    if not value:
        return None
    if value.startswith("0x"):
        return None if int(value, 16) == 0 else value.lower()
    return value


def _show(value: object) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else repr(value)


class SignedTx(_Value):
    """Raw signed bytes and their chain id, ready to journal."""

    raw: bytes
    tx_id: str


Authorize = Callable[[str, UnsignedTx, Purpose, str, "Leg"], Awaitable[Authorization]]
"""Asks the policy engine: (agent, unsigned tx, purpose, plan id, leg) -> Authorization."""


class Party(Protocol):
    """One agent's keys as the coordinator sees them (satisfied by wallets.AgentWallet
    wrapped in :class:`chains.atomic.wallet.WalletParty`). Never exposes key material."""

    @property
    def name(self) -> str:
        """The agent name."""

    @property
    def did(self) -> str:
        """The agent's did:key."""

    def address(self, family: str) -> str:
        """The agent's address on chains of the family called `family`."""

    def derive_secret(self, label: str) -> bytes:
        """A 32-byte secret bound to `label` (HMAC of the agent's seed); never stored."""

    def sign_offer(self, claims: dict[str, object]) -> str:
        """A compact JWS over `claims` with the agent's DID key."""

    def sign_tx(
        self,
        family: str,
        unsigned: UnsignedTx,
        authorization: Authorization,
        co_signers: Sequence[bytes] = (),
    ) -> bytes:
        """Raw signed transaction bytes; `co_signers` are extra ed25519 seeds (Solana)."""


class HtlcChain(ABC):
    """Lock, claim, refund and read hash-time-locked escrows on one chain."""

    family: str
    adapter: ChainAdapter
    margin: ChainMargin
    closes_on_settle: bool = False
    """True when a claim or refund deletes the escrow (Solana), so it then reads EMPTY."""

    @property
    def name(self) -> str:
        """The chain's name in the deployment."""
        return self.adapter.chain.name

    @abstractmethod
    def locator(self, plan_id: str, index: int, party: Party) -> str:
        """The escrow id of leg `index` of `plan_id` locked by `party` (deterministic)."""

    @abstractmethod
    async def now(self) -> int:
        """The chain clock (unix seconds) that deadlines are compared with."""

    @abstractmethod
    async def read(self, leg: Leg, *, final: bool = False) -> OnChainLock:
        """The escrow `leg.locator` as the chain records it (at the final head if `final`)."""

    async def why_not_asset(self, asset: str | None) -> str | None:
        """Why this escrow cannot hold `asset` (None: the native coin), or None if it can.
        By default it holds the native coin and tokens alike."""
        return None

    async def allowance(self, leg: Leg) -> int | None:
        """How much of `leg.asset` the escrow may take from `leg.sender` now; None where a
        lock needs no approval first (the native coin, or a chain whose lock the sender
        signs as the token's owner). By default none does."""
        return None

    def why_not_locked(self, leg: Leg) -> str | None:
        """Why the last :meth:`read` of `leg` found something at the escrow that is not a
        valid lock (a forged or short account), or None. By default nothing is."""
        return None

    @abstractmethod
    async def build(
        self,
        purpose: Purpose,
        leg: Leg,
        *,
        hashlock: bytes = b"",
        preimage: bytes = b"",
        payer: str,
    ) -> UnsignedTx:
        """An unsigned step of `leg` (see :data:`Purpose`), paid by `payer`. Only a chain
        whose :meth:`allowance` can be short builds `approve` and `revoke`."""

    @abstractmethod
    def co_signers(self, purpose: Purpose, leg: Leg, party: Party, plan_id: str) -> list[bytes]:
        """Extra signing seeds a transaction needs (the Solana escrow for a lock)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; a no-op by default."""

    async def can_read_reveals(self) -> bool:
        """Whether :meth:`revealed_preimage` works against this endpoint. A swap taker
        must be able to read the preimage where the maker claims, or it would lose."""
        return True

    @abstractmethod
    async def revealed_preimage(
        self, leg: Leg, hashlock: bytes, *, lock_tx: str | None = None
    ) -> bytes | None:
        """The preimage a claim of `leg` revealed on chain, if it was claimed; `lock_tx`
        (the lock's transaction) bounds the search where the chain needs a range."""

    async def settlement(
        self, leg: Leg, hashlock: bytes, *, lock_tx: str | None = None
    ) -> LockState | None:
        """How the escrow of `leg`, locked once and closed since (``closes_on_settle``),
        was settled: CLAIMED if a claim revealing the preimage is on chain, REFUNDED if
        none is (a closed escrow was claimed or refunded), None if the endpoint cannot
        show the escrow's history. Asked only from the deadline on: before it, a closed
        escrow can only have been claimed. A client that can see the refund itself, or
        tell "no claim" from a failed read, should override this."""
        if await self.revealed_preimage(leg, hashlock, lock_tx=lock_tx) is not None:
            return LockState.CLAIMED
        if not await self.can_read_reveals():
            return None
        return LockState.REFUNDED


def hashlock_of(preimage: bytes) -> bytes:
    """SHA-256 of a 32-byte preimage."""
    if len(preimage) != 32:
        raise PlanRefused(f"a preimage has 32 bytes, got {len(preimage)}")
    return hashlib.sha256(preimage).digest()


async def supported_asset(chain: HtlcChain, asset: str | None) -> None:
    """Refuse, before anything is sent, a leg whose asset `chain`'s escrow cannot hold."""
    reason = await chain.why_not_asset(asset)
    if reason is not None:
        raise PlanRefused(f"leg on {chain.name} cannot escrow {asset}: {reason}")


def check_plan_id(plan_id: str) -> None:
    """Plan ids are short lowercase slugs, so derived labels never collide."""
    if not re.match(PLAN_ID_PATTERN, plan_id):
        raise PlanRefused(
            f"plan id {plan_id!r} must match {PLAN_ID_PATTERN} "
            "(lowercase letters, digits, dashes and underscores)"
        )
