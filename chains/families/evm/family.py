"""The EVM family: accounts are secp256k1 keys, transactions EIP-1559 dicts, escrows
the project's HTLC contract, local chains anvil (or py-evm in-process).

Heavy modules (web3, the adapter, the escrow client, anvil helpers) are imported in the
methods that use them, so importing the family registry stays cheap.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter

from chains.families.base import DoctorStatus, Rpc
from chains.families.evm.config import (
    BlockTagFinality,
    ConfirmationsFinality,
    EvmChain,
    EvmFees,
)
from config.chain_model import ChainModel
from config.margins import EVM_DEFAULT
from config.types import EvmAddress

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from chains.atomic.base import HtlcChain
    from chains.base import ChainAdapter, UnsignedTx
    from chains.devnet._fund import NodeCall
    from config.margins import ChainMargin
    from config.prices import FeedReading, OnChainFeed
    from wallets.authorization import Authorization, AuthorizationVerifier
    from wallets.operator import AgentWallet

_ADDRESS = TypeAdapter(EvmAddress)
WEI_PER_ETH = 10**18


def _evm(chain: ChainModel) -> EvmChain:
    if not isinstance(chain, EvmChain):
        raise TypeError(f"chain {chain.name} is not an EVM chain")
    return chain


class EvmFamily:
    """The :class:`~chains.families.base.ChainFamily` of EVM chains."""

    name = "evm"
    label = "EVM"
    did_namespace = "eip155"
    config_model = EvmChain
    config_sections: tuple[type[BaseModel], ...] = (
        ConfirmationsFinality,
        BlockTagFinality,
        EvmFees,
    )
    default_margin = EVM_DEFAULT
    asset_field = "erc20"
    devnet_kind = "anvil"

    def address(self, wallet: AgentWallet) -> str:
        return wallet.evm_address

    def owns_address(self, address: str) -> bool:
        return address.startswith("0x")

    def validate_address(self, address: str) -> str:
        return str(_ADDRESS.validate_python(address))

    def caip2(self, chain: ChainModel, *, genesis: str | None = None) -> str:
        return f"{self.did_namespace}:{_evm(chain).chain_id}"

    def verification_method(self, account_id: str) -> dict[str, str]:
        return {"type": "EcdsaSecp256k1RecoveryMethod2020"}

    def did_public_key(self, address: str) -> str:
        # A secp256k1 account is known by its address; the key is recovered from a signature.
        return ""

    def identity_clash(self, chain: ChainModel, other: ChainModel) -> tuple[str, str] | None:
        chain_id = _evm(chain).chain_id
        if chain_id != _evm(other).chain_id:
            return None
        return "chain_id", (
            f"chain id {chain_id} is used by both {other.name!r} and {chain.name!r}; "
            "each EVM chain needs its own chain id"
        )

    def misplaced_token(self, chain: str) -> str:
        return f"erc20 token on non-EVM chain {chain!r}"

    def owns_unsigned(self, unsigned: UnsignedTx) -> bool:
        from chains.families.evm.tx import EvmUnsignedTx

        return isinstance(unsigned, EvmUnsignedTx)

    def digest(self, unsigned: UnsignedTx) -> bytes:
        from wallets.authorization import evm_tx_digest

        return evm_tx_digest(_tx(unsigned).tx)

    def sign(
        self,
        wallet: AgentWallet,
        verifier: AuthorizationVerifier,
        unsigned: UnsignedTx,
        authorization: Authorization,
        co_signers: Sequence[bytes],
    ) -> bytes:
        from chains.families.evm.signing import sign_evm

        # An EVM transaction has one signer; `co_signers` exist only for other families.
        return sign_evm(wallet, verifier, _tx(unsigned).tx, authorization)

    def encode_unsigned(self, unsigned: UnsignedTx) -> dict[str, Any]:
        tx = _tx(unsigned).tx
        return {"tx": {k: v.hex() if isinstance(v, bytes) else v for k, v in tx.items()}}

    def decode_unsigned(self, common: dict[str, Any], data: dict[str, Any]) -> UnsignedTx:
        from chains.families.evm.tx import EvmUnsignedTx

        return EvmUnsignedTx.model_validate({**common, "tx": data["tx"]})

    async def connect(self, chain: ChainModel, url: str, engine: Engine | None) -> ChainAdapter:
        from chains.families.evm.adapter import EvmAdapter

        return await EvmAdapter.connect(_evm(chain), url=url, nonces=_nonces(engine))

    async def connect_in_process(
        self, chain: ChainModel, backend: object, engine: Engine | None
    ) -> ChainAdapter:
        from web3 import AsyncEthereumTesterProvider

        from chains.families.evm.adapter import EvmAdapter

        assert isinstance(backend, AsyncEthereumTesterProvider)
        return await EvmAdapter.connect(_evm(chain), provider=backend, nonces=_nonces(engine))

    def in_process(self, chain: ChainModel) -> object:
        from chains.families.evm._pyevm import pyevm_provider

        return pyevm_provider(_evm(chain).chain_id)

    def fund_in_process(self, backend: object, address: str, amount: int) -> None:
        tester = backend.ethereum_tester  # type: ignore[attr-defined]
        tester.send_transaction(
            {"from": tester.get_accounts()[0], "to": address, "value": amount, "gas": 21_000}
        )

    def escrow(self, adapter: ChainAdapter, address: str, *, margin: ChainMargin) -> HtlcChain:
        from chains.families.evm.adapter import EvmAdapter
        from chains.families.evm.escrow import EvmHtlc

        assert isinstance(adapter, EvmAdapter)
        return EvmHtlc(adapter, address, margin=margin)

    def native_unit(self) -> int:
        return WEI_PER_ETH

    def local_node_installed(self) -> bool:
        from chains.families.evm._anvil import anvil_path

        return anvil_path() is not None

    def start_node(
        self, chain: ChainModel, port: int, directory: Path, log: Path
    ) -> subprocess.Popen[bytes]:
        from chains.families.evm._anvil import start_anvil

        state = directory / f"{chain.name}.anvil.json"
        return start_anvil(
            _evm(chain).chain_id, port, state=state, block_time=chain.local.block_time, log=log
        )

    def node_marker(self) -> bytes:
        return b"anvil"

    async def fund_node(self, call: NodeCall, address: str, amount: int) -> None:
        from chains.families.evm.devnet import fund

        await fund(call, address, amount)

    def local_escrow(self) -> str:
        from chains.families.evm.devnet import LOCAL_EVM_HTLC

        return LOCAL_EVM_HTLC

    async def install_escrow(self, url: str) -> None:
        from chains.families.evm.devnet import install_evm_htlc

        await install_evm_htlc(url)

    local_token_decimals = 6

    def local_token(self, symbol: str) -> str:
        from chains.families.evm.devnet import local_token_address

        return local_token_address(symbol)

    async def install_local_token(self, url: str, token: str) -> None:
        from chains.families.evm.devnet import install_local_token

        await install_local_token(url, token)

    async def fund_local_token(self, url: str, token: str, address: str, amount: int) -> None:
        from chains.families.evm.devnet import top_up_local_token

        await top_up_local_token(url, token, address, amount)

    # price feeds

    price_kind = "chainlink"

    async def read_price(
        self, adapter: ChainAdapter, feed: OnChainFeed, address: str
    ) -> FeedReading:
        from chains.families.evm.adapter import EvmAdapter
        from chains.families.evm.prices import read_chainlink
        from config.prices import ChainlinkFeed

        if not isinstance(adapter, EvmAdapter) or not isinstance(feed, ChainlinkFeed):
            raise TypeError(f"{feed.label()} is not a Chainlink feed read by an EVM adapter")
        return await read_chainlink(adapter, feed, address)

    def local_price_feed(self, symbol: str) -> str:
        from chains.families.evm.prices import local_feed_address

        return local_feed_address(symbol)

    async def set_local_price(self, url: str, symbol: str, usd: Decimal, published_at: int) -> str:
        from chains.families.evm.prices import set_local_chainlink

        return await set_local_chainlink(url, symbol, usd, published_at)

    def local_example(self) -> dict[str, Any]:
        return {"name": "evm-local", "family": self.name, "chain_id": 31337, "rpc": "local"}

    async def doctor_check(self, chain: ChainModel, rpc: Rpc) -> tuple[DoctorStatus, str]:
        expected, actual = _evm(chain).chain_id, int(await rpc("eth_chainId"), 16)
        if actual != expected:
            return "fail", (
                f"endpoint serves chain id {actual}, deployment says {expected}; "
                "fix chain_id or the rpc URL"
            )
        return "ok", f"chain id {actual}"


def _tx(unsigned: UnsignedTx) -> Any:
    from chains.families.evm.tx import EvmUnsignedTx

    if not isinstance(unsigned, EvmUnsignedTx):
        raise TypeError(f"not an EVM transaction: {type(unsigned).__name__}")
    return unsigned


def _nonces(engine: Engine | None) -> Any:
    from chains._store import NonceStore

    return NonceStore(engine) if engine is not None else None
