"""The chain adapter interface and the values that cross it.

An adapter builds unsigned transactions from intents, simulates them, broadcasts bytes
that someone else signed, and reports status with the chain's own finality levels. It
never signs and holds no keys: the only way a transaction reaches a chain through an
adapter is as already signed bytes passed to :meth:`ChainAdapter.broadcast`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Annotated, Any, Literal, NewType, Self

from pydantic import BaseModel, ConfigDict, Field

from config.chain_model import ChainModel
from config.errors import BlockhashExpired, ChainError, RpcUnreachable
from config.models import Asset

RpcErrorHook = Callable[[str, ChainError], None]
"""Told (chain name, error) of every failed read; the console's metrics count them."""


def error_kind(error: ChainError) -> str:
    """A short label for `error`'s class: 'unreachable', 'chain_timeout', ..."""
    if isinstance(error, RpcUnreachable):
        return "unreachable"
    name = type(error).__name__.removesuffix("Error") or "chain"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


TxId = NewType("TxId", str)
"""A transaction hash (EVM, 0x hex) or first signature (Solana, base58)."""


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NativeTransfer(_Value):
    """Move the chain's native coin (wei or lamports) to `to`."""

    kind: Literal["native"] = "native"
    to: str
    amount: int = Field(gt=0, description="Base units: wei or lamports.")


class TokenTransfer(_Value):
    """Move an ERC-20 or SPL token; SPL recipients get an associated account if missing."""

    kind: Literal["token"] = "token"
    token: str = Field(description="ERC-20 contract address or SPL mint address.")
    to: str = Field(description="The recipient's wallet (owner) address.")
    amount: int = Field(gt=0, description="Base units of the token.")


class ContractCall(_Value):
    """Call `function` of the EVM contract at `to` with `args`, encoded from `abi`."""

    kind: Literal["contract_call"] = "contract_call"
    to: str
    abi: tuple[dict[str, Any], ...]
    function: str
    args: tuple[Any, ...] = ()
    value: int = Field(default=0, ge=0)


class AccountRef(_Value):
    """One account of a Solana instruction, in the program's order."""

    pubkey: str
    is_signer: bool = False
    is_writable: bool = False


class ProgramInstruction(_Value):
    """One raw Solana instruction for `program_id` (data already encoded)."""

    kind: Literal["program"] = "program"
    program_id: str
    accounts: tuple[AccountRef, ...] = ()
    data: bytes = b""


Intent = Annotated[
    NativeTransfer | TokenTransfer | ContractCall | ProgramInstruction,
    Field(discriminator="kind"),
]


class UnsignedTx(_Value):
    """What a signer needs, plus `digest`, the value an Authorization is bound to."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    chain: str
    sender: str
    intent: Intent
    digest: bytes

    @property
    def nonce(self) -> int | None:
        """The sender nonce this transaction uses, on chains that order by nonce."""
        return None

    @property
    def expires_at_height(self) -> int | None:
        """The block height after which it can no longer land, on chains where it expires."""
        return None


class Simulation(_Value):
    """The outcome of running a transaction without committing it."""

    ok: bool
    reason: str | None = None
    gas_used: int | None = Field(default=None, description="Gas, or compute units.")
    logs: tuple[str, ...] = ()


TxState = Literal["pending", "included", "final", "failed", "dropped"]


class TxStatus(_Value):
    """Where a transaction stands.

    `pending`: known but not in a block (or, on Solana, not yet seen); `included`: in a
    block but not final under the chain's finality rule; `final`; `failed`: included and
    reverted, or its nonce was used by another transaction; `dropped`: the node no longer
    knows it, so the same signed bytes may be broadcast again.
    """

    tx_id: TxId
    state: TxState
    block: int | None = Field(default=None, description="Block number or slot.")
    finality: str | None = Field(default=None, description="e.g. 'confirmed', '2/3 blocks'.")
    reason: str | None = None


class NonceTooLow(ChainError):
    """The node already has a transaction with this nonce from this sender."""


class FeeAboveCap(ChainError):
    """Current fees exceed the chain's configured caps, so nothing is sent."""


class TxExpired(BlockhashExpired):
    """A Solana transaction can no longer land: its blockhash expired.

    `signature_absent` is True once the chain has passed `last_valid_block_height` and
    the signature is not found: only then is building and signing a new transaction safe.
    """

    def __init__(self, message: str, *, signature: str, signature_absent: bool) -> None:
        super().__init__(message)
        self.signature = signature
        self.signature_absent = signature_absent


class ChainAdapter(ABC):
    """Build, simulate, broadcast and track transactions on one chain. Never signs."""

    chain: ChainModel
    rpc_error_hook: RpcErrorHook | None = None
    """Set by whoever counts RPC errors (the console's metrics); None counts nothing."""

    def rpc_error(self, error: ChainError) -> None:
        """Report one failed read (the retry layer calls this for every attempt)."""
        if self.rpc_error_hook is not None:
            self.rpc_error_hook(self.chain.name, error)

    @abstractmethod
    async def balance(self, address: str, asset: Asset | str | None = None) -> int:
        """Balance of `address` in base units: native coin, or a token (Asset or address)."""

    @abstractmethod
    async def build(self, intent: Intent, sender: str) -> UnsignedTx:
        """An unsigned transaction for `intent` paid by `sender`, simulated first."""

    @abstractmethod
    async def simulate(self, tx: UnsignedTx | bytes) -> Simulation:
        """Run an unsigned transaction or signed bytes without committing it."""

    @abstractmethod
    async def broadcast(self, signed: bytes) -> TxId:
        """Simulate, then send already signed bytes once. Never retried blindly."""

    @abstractmethod
    async def status(self, tx_id: TxId) -> TxStatus:
        """Where the transaction stands under this chain's finality rule."""

    @abstractmethod
    async def height(self) -> int:
        """The current block number (EVM) or block height (Solana)."""

    @abstractmethod
    def tx_id(self, signed: bytes) -> TxId:
        """The id the chain will know `signed` by, computed locally."""

    async def abandon(self, tx: UnsignedTx) -> None:  # noqa: B027 - optional hook
        """Give back what building `tx` reserved (an EVM nonce), because it will never be
        signed, e.g. a policy denied it. A no-op where building reserves nothing."""

    async def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release connections; a no-op for adapters that hold none."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
