"""Backends for the shared ChainAdapter contract suite, each a real chain.

Tests sign with eth_account / solders Keypair directly: adapters never sign, and the
wallets signers are a separate package.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from solders.keypair import Keypair
from solders.transaction import VersionedTransaction

from chains._store import NonceStore
from chains.base import ChainAdapter, UnsignedTx
from chains.devnet.processes import free_port
from chains.families.evm._anvil import anvil_path, start_anvil
from chains.families.evm._pyevm import funded_keys, pyevm_provider
from chains.families.evm.adapter import EvmAdapter
from chains.families.evm.config import EvmChain
from chains.families.evm.tx import EvmUnsignedTx
from chains.families.solana._solana_proc import start_solana_rpc
from chains.families.solana._svm import SvmLedger
from chains.families.solana.adapter import SolanaAdapter
from chains.families.solana.config import SolanaChain
from chains.families.solana.tx import SolanaUnsignedTx
from chains.journal import TxJournal
from config.store import open_store

ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

needs_anvil = pytest.mark.skipif(anvil_path() is None, reason="anvil not installed (npm ci)")


@dataclass
class Backend:
    """A funded sender on a live chain, and how to sign for it."""

    name: str
    adapter: ChainAdapter
    sender: str
    sign: Callable[[UnsignedTx], Awaitable[bytes]]
    amount: int
    new_address: Callable[[], str]
    journal: TxJournal


def evm_chain(chain_id: int = 31337, **overrides: object) -> EvmChain:
    return EvmChain.model_validate(
        {
            "name": "evm-test",
            "family": "evm",
            "chain_id": chain_id,
            "rpc": "local",
            "finality": {"confirmations": 0},
            **overrides,
        }
    )


def evm_signer(key: str | bytes) -> Callable[[UnsignedTx], Awaitable[bytes]]:
    account = Account.from_key(key)

    async def sign(tx: UnsignedTx) -> bytes:
        assert isinstance(tx, EvmUnsignedTx)
        return bytes(account.sign_transaction(tx.tx).raw_transaction)

    return sign


def new_evm_address() -> str:
    return str(Account.create().address)


@pytest.fixture
def engine(tmp_path: Path):
    engine = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield engine
    engine.dispose()


class Anvil:
    """One anvil process the test may kill and restart on the same port."""

    def __init__(self, chain_id: int, tmp: Path, *, no_mining: bool = False) -> None:
        self.chain_id, self.port, self.no_mining = chain_id, free_port(), no_mining
        self.log = tmp / f"anvil-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = start_anvil(self.chain_id, self.port, no_mining=self.no_mining, log=self.log)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def anvil_factory(tmp_path: Path) -> Iterator[Callable[..., Anvil]]:
    started: list[Anvil] = []

    def make(chain_id: int = 31337, *, no_mining: bool = False) -> Anvil:
        node = Anvil(chain_id, tmp_path, no_mining=no_mining)
        started.append(node)
        return node

    yield make
    for node in started:
        node.kill()


async def anvil_backend(anvil_factory, engine) -> Backend:
    node = anvil_factory()
    adapter = await EvmAdapter.connect(evm_chain(), url=node.url, nonces=NonceStore(engine))
    return Backend(
        "anvil",
        adapter,
        Account.from_key(ANVIL_KEY).address,
        evm_signer(ANVIL_KEY),
        10**15,
        new_evm_address,
        TxJournal(engine),
    )


async def pyevm_backend(engine) -> Backend:
    provider = pyevm_provider(31337)
    key = funded_keys(provider)[0]
    adapter = await EvmAdapter.connect(evm_chain(), provider=provider, nonces=NonceStore(engine))
    return Backend(
        "pyevm",
        adapter,
        Account.from_key(key).address,
        evm_signer(key),
        10**15,
        new_evm_address,
        TxJournal(engine),
    )


def solana_chain(**overrides: object) -> SolanaChain:
    return SolanaChain.model_validate(
        {
            "name": "solana-test",
            "family": "solana",
            "cluster": "localnet",
            "rpc": "local",
            **overrides,
        }
    )


def solana_signer(*keypairs: Keypair) -> Callable[[UnsignedTx], Awaitable[bytes]]:
    async def sign(tx: UnsignedTx) -> bytes:
        assert isinstance(tx, SolanaUnsignedTx)
        return bytes(VersionedTransaction(tx.message, list(keypairs)))

    return sign


def new_solana_address() -> str:
    return str(Keypair().pubkey())


class SolanaRpcServer:
    """The LiteSVM JSON-RPC server process on a free port."""

    def __init__(self, tmp: Path, *, block_time: float = 0.4) -> None:
        self.port = free_port()
        self.process = start_solana_rpc(
            self.port, block_time=block_time, log=tmp / f"solana-{self.port}.log"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture(scope="session")
def solana_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SolanaRpcServer]:
    server = SolanaRpcServer(tmp_path_factory.mktemp("solana"))
    yield server
    server.kill()


async def solana_rpc_backend(url: str, engine) -> Backend:
    payer = Keypair()
    adapter = await SolanaAdapter.connect(solana_chain(), url=url)
    await adapter._backend._client.request_airdrop(payer.pubkey(), 10 * 10**9)  # type: ignore[attr-defined]
    return Backend(
        "solana-rpc",
        adapter,
        str(payer.pubkey()),
        solana_signer(payer),
        10**6,
        new_solana_address,
        TxJournal(engine),
    )


async def solana_ledger_backend(engine) -> Backend:
    payer, ledger = Keypair(), SvmLedger()
    ledger.airdrop(str(payer.pubkey()), 10 * 10**9)
    adapter = await SolanaAdapter.connect(solana_chain(), ledger=ledger)
    return Backend(
        "solana-litesvm",
        adapter,
        str(payer.pubkey()),
        solana_signer(payer),
        10**6,
        new_solana_address,
        TxJournal(engine),
    )


BACKENDS = [
    pytest.param("anvil", marks=[needs_anvil, pytest.mark.anvil]),
    "pyevm",
    "solana-rpc",
    "solana-litesvm",
]


@pytest.fixture(params=BACKENDS)
async def backend(request, anvil_factory, engine) -> AsyncIterator[Backend]:
    name = request.param
    if name == "anvil":
        made = await anvil_backend(anvil_factory, engine)
    elif name == "pyevm":
        made = await pyevm_backend(engine)
    elif name == "solana-rpc":
        made = await solana_rpc_backend(request.getfixturevalue("solana_server").url, engine)
    else:
        made = await solana_ledger_backend(engine)
    yield made
    await made.adapter.close()
