"""The interface every chain family implements, so the rest of Covenant never asks
which family a chain belongs to.

A family is one object (``FAMILY`` in ``chains/families/<name>/__init__.py``) listed once
in the registry (:mod:`chains.families`). Code outside the family folders looks the
family up (by name, by chain config, by unsigned transaction) and calls it; it never
compares family names or tests for a family's classes.

Importing a family must stay cheap: its ``__init__`` imports only its configuration
model (which :mod:`config.models` needs while it is being built) and imports its
adapter, escrow client and devnet helpers inside the methods that use them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from config.chain_model import ChainModel
from config.margins import ChainMargin

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from chains.atomic.base import HtlcChain
    from chains.base import ChainAdapter, UnsignedTx
    from chains.devnet._fund import NodeCall
    from config.prices import FeedReading, OnChainFeed
    from wallets.authorization import Authorization, AuthorizationVerifier
    from wallets.operator import AgentWallet

Rpc = Callable[[str], Awaitable[Any]]
"""A JSON-RPC call without parameters against one endpoint (what `doctor` sends)."""

DoctorStatus = Literal["ok", "fail"]


@runtime_checkable
class ChainFamily(Protocol):
    """One chain family: its configuration, keys, transactions, chain access, local
    chains, checks and margins."""

    name: str
    """The value of a chain's `family:` key, and of the `family` of held transactions."""
    label: str
    """How messages name the family ('EVM')."""
    did_namespace: str
    """The CAIP-2 namespace of its accounts in a did:pkh."""
    config_model: type[ChainModel]
    """The pydantic model of one configured chain of this family."""
    config_sections: tuple[type[BaseModel], ...]
    """The models inside the chain model that the configuration reference documents."""
    default_margin: ChainMargin
    """Timelock margin of the family's chains when no per-chain override is given."""
    asset_field: str
    """The `Asset` field naming a token of this family (its contract or mint)."""
    devnet_kind: str
    """The `kind` of the family's local node in the devnet state file."""

    # keys and addresses
    def address(self, wallet: AgentWallet) -> str:
        """The agent's account on every chain of this family."""

    def owns_address(self, address: str) -> bool:
        """True if `address` is written the way this family writes accounts."""

    def validate_address(self, address: str) -> str:
        """`address` checked (and normalised); ValueError or ValidationError if invalid."""

    # identity
    def caip2(self, chain: ChainModel, *, genesis: str | None = None) -> str:
        """The CAIP-2 chain id of `chain` (`genesis`: a local chain's genesis, if known)."""

    def verification_method(self, account_id: str) -> dict[str, str]:
        """The DID-document verification method fields of a did:pkh account."""

    def did_public_key(self, address: str) -> str:
        """The public key a DID document lists for `address` ('' when none)."""

    # configuration checks
    def identity_clash(self, chain: ChainModel, other: ChainModel) -> tuple[str, str] | None:
        """(field, message) if `chain` and an earlier `other` of this family are the same
        network; None if they can coexist."""

    def misplaced_token(self, chain: str) -> str:
        """The error for an asset that sets :attr:`asset_field` on a chain of another family."""

    # transactions
    def owns_unsigned(self, unsigned: UnsignedTx) -> bool:
        """True if `unsigned` is a transaction of this family."""

    def digest(self, unsigned: UnsignedTx) -> bytes:
        """The digest an Authorization binds to, computed from the transaction itself."""

    def sign(
        self,
        wallet: AgentWallet,
        verifier: AuthorizationVerifier,
        unsigned: UnsignedTx,
        authorization: Authorization,
        co_signers: Sequence[bytes],
    ) -> bytes:
        """Raw signed bytes; the wallet's signer checks `authorization` first."""

    def encode_unsigned(self, unsigned: UnsignedTx) -> dict[str, Any]:
        """The family's part of a held transaction, as JSON values."""

    def decode_unsigned(self, common: dict[str, Any], data: dict[str, Any]) -> UnsignedTx:
        """The transaction :meth:`encode_unsigned` wrote (`common`: chain, sender, ...)."""

    # chain access
    async def connect(self, chain: ChainModel, url: str, engine: Engine | None) -> ChainAdapter:
        """An adapter for `chain` at `url` (nonces kept in `engine`'s store when given)."""

    async def connect_in_process(
        self, chain: ChainModel, backend: object, engine: Engine | None
    ) -> ChainAdapter:
        """An adapter for `chain` on the in-process `backend` of :meth:`in_process`."""

    def in_process(self, chain: ChainModel) -> object:
        """A fresh in-process chain for `chain` (the zero-install demo)."""

    def fund_in_process(self, backend: object, address: str, amount: int) -> None:
        """Give `address` `amount` base units on the in-process `backend`."""

    def escrow(self, adapter: ChainAdapter, address: str, *, margin: ChainMargin) -> HtlcChain:
        """The HTLC client of the escrow at `address` on `adapter`'s chain; it reads and
        sends through `adapter`, so retries and error mapping stay in the adapter."""

    # local chains (devnet)
    def native_unit(self) -> int:
        """Base units in one native coin."""

    def local_node_installed(self) -> bool:
        """Whether the program :meth:`start_node` runs is installed here."""

    def start_node(
        self, chain: ChainModel, port: int, directory: Path, log: Path
    ) -> subprocess.Popen[bytes]:
        """Start the local node of `chain` on `port` (state under `directory`)."""

    def node_marker(self) -> bytes:
        """Bytes in the local node's command line that tell it is that node."""

    async def fund_node(self, call: NodeCall, address: str, amount: int) -> None:
        """Give `address` `amount` base units through `call`, the local node's JSON-RPC."""

    def local_escrow(self) -> str:
        """Where `htlc: local` puts the project's escrow on a local chain."""

    async def install_escrow(self, url: str) -> None:
        """Install the project's escrow on the local node at `url` (idempotent)."""

    local_token_decimals: int
    """Decimals of the token :meth:`install_local_token` installs."""

    def local_token(self, symbol: str) -> str:
        """Where the local token of `symbol` lives on local chains (the address an asset
        whose :attr:`asset_field` is `local` resolves to)."""

    async def install_local_token(self, url: str, token: str) -> None:
        """Install the local token at `token` on the node at `url` (idempotent)."""

    async def fund_local_token(self, url: str, token: str, address: str, amount: int) -> None:
        """Give `address` `amount` base units of the local token at `token`."""

    def local_example(self) -> dict[str, Any]:
        """A local chain of this family as a deployment's `chains:` entry, named
        ``<family>-local`` (the chain the policy testing kit gives its agents)."""

    # price feeds
    price_kind: str
    """The kind of `prices:` source this family reads (e.g. `chainlink`)."""

    async def read_price(
        self, adapter: ChainAdapter, feed: OnChainFeed, address: str
    ) -> FeedReading:
        """Read `feed` at `address` through `adapter` (its chain's one read path); raise
        :class:`config.errors.ChainError` naming the feed when it cannot be trusted."""

    def local_price_feed(self, symbol: str) -> str:
        """Where `devnet up` installs the `local` feed of `symbol` (one per symbol)."""

    async def set_local_price(self, url: str, symbol: str, usd: Decimal, published_at: int) -> str:
        """Install (if needed) and move the local feed of `symbol` on the node at `url`
        to `usd` published at `published_at` (Unix seconds); returns its address."""

    # doctor
    async def doctor_check(self, chain: ChainModel, rpc: Rpc) -> tuple[DoctorStatus, str]:
        """Whether the endpoint `rpc` calls serves the network `chain` configures."""


__all__ = ["ChainFamily", "DoctorStatus", "Rpc"]
