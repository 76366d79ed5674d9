"""The Solana family: accounts are Ed25519 keys, transactions compiled messages, escrows
the project's HTLC program, local chains a LiteSVM server (or LiteSVM in-process).

Heavy modules (solana-py, the adapter, the escrow client, LiteSVM) are imported in the
methods that use them, so importing the family registry stays cheap.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter

from chains.families.base import DoctorStatus, Rpc
from chains.families.solana.config import SOLANA_GENESIS, SolanaChain, SolanaFees, SolanaFinality
from config.chain_model import ChainModel
from config.margins import SOLANA_DEFAULT
from config.types import SolanaAddress

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from chains.atomic.base import HtlcChain
    from chains.base import ChainAdapter, UnsignedTx
    from chains.devnet._fund import NodeCall
    from chains.families.solana.tx import SolanaUnsignedTx
    from config.margins import ChainMargin
    from config.prices import FeedReading, OnChainFeed
    from wallets.authorization import Authorization, AuthorizationVerifier
    from wallets.operator import AgentWallet

_ADDRESS = TypeAdapter(SolanaAddress)
LAMPORTS_PER_SOL = 10**9
LOCALNET_REFERENCE = "localnet"
"""CAIP-2 reference used for a ``localnet`` cluster whose genesis hash was not given."""


def _solana(chain: ChainModel) -> SolanaChain:
    if not isinstance(chain, SolanaChain):
        raise TypeError(f"chain {chain.name} is not a Solana chain")
    return chain


class SolanaFamily:
    """The :class:`~chains.families.base.ChainFamily` of Solana clusters."""

    name = "solana"
    label = "Solana"
    did_namespace = "solana"
    config_model = SolanaChain
    config_sections: tuple[type[BaseModel], ...] = (SolanaFinality, SolanaFees)
    default_margin = SOLANA_DEFAULT
    asset_field = "spl_mint"
    devnet_kind = "solana-rpc"

    def address(self, wallet: AgentWallet) -> str:
        return wallet.solana_address

    def owns_address(self, address: str) -> bool:
        return not address.startswith("0x")

    def validate_address(self, address: str) -> str:
        return str(_ADDRESS.validate_python(address))

    def caip2(self, chain: ChainModel, *, genesis: str | None = None) -> str:
        # CAIP-2 references are at most 32 characters: the genesis hash's first 32.
        known = genesis or SOLANA_GENESIS.get(_solana(chain).cluster) or LOCALNET_REFERENCE
        return f"{self.did_namespace}:{known[:32]}"

    def verification_method(self, account_id: str) -> dict[str, str]:
        address = account_id.split(":")[2]
        return {"type": "Ed25519VerificationKey2018", "publicKeyBase58": address}

    def did_public_key(self, address: str) -> str:
        # A Solana address is the Ed25519 public key itself.
        return address

    def identity_clash(self, chain: ChainModel, other: ChainModel) -> tuple[str, str] | None:
        # Several configured chains may point at one cluster (e.g. two RPC providers).
        return None

    def misplaced_token(self, chain: str) -> str:
        return f"spl_mint on non-Solana chain {chain!r}"

    def owns_unsigned(self, unsigned: UnsignedTx) -> bool:
        from chains.families.solana.tx import SolanaUnsignedTx

        return isinstance(unsigned, SolanaUnsignedTx)

    def digest(self, unsigned: UnsignedTx) -> bytes:
        from wallets.authorization import solana_message_digest

        return solana_message_digest(_tx(unsigned).message)

    def sign(
        self,
        wallet: AgentWallet,
        verifier: AuthorizationVerifier,
        unsigned: UnsignedTx,
        authorization: Authorization,
        co_signers: Sequence[bytes],
    ) -> bytes:
        from chains.families.solana.signing import sign_solana

        return sign_solana(wallet, verifier, _tx(unsigned).message, authorization, co_signers)

    def encode_unsigned(self, unsigned: UnsignedTx) -> dict[str, Any]:
        from solders.message import MessageV0, to_bytes_versioned

        tx = _tx(unsigned)
        versioned = isinstance(tx.message, MessageV0)
        raw = to_bytes_versioned(tx.message) if versioned else bytes(tx.message)
        message = base64.b64encode(raw).decode()
        return {"message": message, "v0": versioned, "lvbh": tx.last_valid_block_height}

    def decode_unsigned(self, common: dict[str, Any], data: dict[str, Any]) -> UnsignedTx:
        from solders.message import Message, from_bytes_versioned

        from chains.families.solana.tx import SolanaUnsignedTx

        raw = base64.b64decode(data["message"])
        message = from_bytes_versioned(raw) if data["v0"] else Message.from_bytes(raw)
        return SolanaUnsignedTx.model_validate(
            {**common, "message": message, "last_valid_block_height": data["lvbh"]}
        )

    async def connect(self, chain: ChainModel, url: str, engine: Engine | None) -> ChainAdapter:
        # Solana has no nonces to reserve: a blockhash bounds each transaction instead.
        from chains.families.solana.adapter import SolanaAdapter

        return await SolanaAdapter.connect(_solana(chain), url=url)

    async def connect_in_process(
        self, chain: ChainModel, backend: object, engine: Engine | None
    ) -> ChainAdapter:
        from chains.families.solana._svm import SvmLedger
        from chains.families.solana.adapter import SolanaAdapter

        assert isinstance(backend, SvmLedger)
        return await SolanaAdapter.connect(_solana(chain), ledger=backend)

    def in_process(self, chain: ChainModel) -> object:
        from chains.families.solana._svm import SvmLedger

        return SvmLedger()

    def fund_in_process(self, backend: object, address: str, amount: int) -> None:
        from chains.families.solana._svm import SvmLedger

        assert isinstance(backend, SvmLedger)
        backend.airdrop(address, amount)

    def escrow(self, adapter: ChainAdapter, address: str, *, margin: ChainMargin) -> HtlcChain:
        from chains.families.solana.adapter import SolanaAdapter
        from chains.families.solana.escrow import SolanaHtlc

        assert isinstance(adapter, SolanaAdapter)
        return SolanaHtlc(adapter, address, margin=margin)

    def native_unit(self) -> int:
        return LAMPORTS_PER_SOL

    def local_node_installed(self) -> bool:
        # The LiteSVM server is this project's own Python module (litesvm is a dependency).
        return True

    def start_node(
        self, chain: ChainModel, port: int, directory: Path, log: Path
    ) -> subprocess.Popen[bytes]:
        from chains.families.solana._solana_proc import start_solana_rpc
        from chains.families.solana.devnet import program_args

        return start_solana_rpc(
            port,
            block_time=chain.local.block_time or 0.4,  # 0.4 s: a Solana slot
            log=log,
            extra_args=program_args(_solana(chain)),
        )

    def node_marker(self) -> bytes:
        return b"chains.families.solana.solana_rpc"

    async def fund_node(self, call: NodeCall, address: str, amount: int) -> None:
        from chains.families.solana.devnet import fund

        await fund(call, address, amount)

    def local_escrow(self) -> str:
        from chains.families.solana.htlc_client import LOCAL_PROGRAM_ID

        return str(LOCAL_PROGRAM_ID)

    async def install_escrow(self, url: str) -> None:
        # The server loads the program when it starts (see `start_node`): nothing to do.
        return None

    local_token_decimals = 6

    def local_token(self, symbol: str) -> str:
        from chains.families.solana.local_token import local_mint

        return local_mint(symbol)

    async def install_local_token(self, url: str, token: str) -> None:
        from chains.families.solana.local_token import install_local_mint

        await install_local_mint(url, token)

    async def fund_local_token(self, url: str, token: str, address: str, amount: int) -> None:
        from chains.families.solana.local_token import top_up_local_mint

        await top_up_local_mint(url, token, address, amount)

    # price feeds

    price_kind = "pyth"

    async def read_price(
        self, adapter: ChainAdapter, feed: OnChainFeed, address: str
    ) -> FeedReading:
        from chains.families.solana.adapter import SolanaAdapter
        from chains.families.solana.prices import read_pyth
        from config.prices import PythFeed

        if not isinstance(adapter, SolanaAdapter) or not isinstance(feed, PythFeed):
            raise TypeError(f"{feed.label()} is not a Pyth feed read by a Solana adapter")
        return await read_pyth(adapter, feed, address)

    def local_price_feed(self, symbol: str) -> str:
        from chains.families.solana.prices import local_account

        return local_account(symbol)

    async def set_local_price(self, url: str, symbol: str, usd: Decimal, published_at: int) -> str:
        from chains.families.solana.prices import set_local_pyth

        return await set_local_pyth(url, symbol, usd, published_at)

    def local_example(self) -> dict[str, Any]:
        return {"name": "solana-local", "family": self.name, "cluster": "localnet", "rpc": "local"}

    async def doctor_check(self, chain: ChainModel, rpc: Rpc) -> tuple[DoctorStatus, str]:
        cluster, genesis = _solana(chain).cluster, await rpc("getGenesisHash")
        expected = SOLANA_GENESIS.get(cluster)
        if expected is not None and genesis != expected:
            return "fail", (
                f"endpoint has genesis {genesis}, which is not cluster {cluster} "
                f"({expected}); fix cluster or the rpc URL"
            )
        return "ok", f"cluster {cluster}, genesis {genesis}"


def _tx(unsigned: UnsignedTx) -> SolanaUnsignedTx:
    from chains.families.solana.tx import SolanaUnsignedTx

    if not isinstance(unsigned, SolanaUnsignedTx):
        raise TypeError(f"not a Solana transaction: {type(unsigned).__name__}")
    return unsigned
