"""One entry point from a configured chain to a connected adapter.

`rpc: local` resolves to the devnet node `devnet up` started for that chain; when none
is running (the zero-install demo) it falls back to an in-process chain: py-evm for EVM
chains and LiteSVM for Solana, one per chain name and shared by every adapter in this
process, so all agents see the same ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import Engine
from web3 import AsyncEthereumTesterProvider

from chains._pyevm import pyevm_provider
from chains._store import NonceStore
from chains.base import ChainAdapter
from chains.devnet._fund import addresses_for, amount_for, fund_url
from chains.devnet._svm import SvmLedger
from chains.devnet.manager import local_url
from chains.evm import EvmAdapter
from chains.solana import SolanaAdapter
from config.errors import ChainError
from config.models import EvmChain, SolanaChain

_IN_PROCESS: dict[str, AsyncEthereumTesterProvider | SvmLedger] = {}


async def connect(
    chain: EvmChain | SolanaChain,
    *,
    data_dir: str | Path | None = None,
    engine: Engine | None = None,
) -> ChainAdapter:
    """A connected adapter for `chain` (nonces kept in `engine`'s store when given)."""
    url = resolve_url(chain, data_dir)
    if isinstance(chain, EvmChain):
        nonces = NonceStore(engine) if engine is not None else None
        if url is not None:
            return await EvmAdapter.connect(chain, url=url, nonces=nonces)
        provider = _in_process(chain)
        assert isinstance(provider, AsyncEthereumTesterProvider)
        return await EvmAdapter.connect(chain, provider=provider, nonces=nonces)
    if url is not None:
        return await SolanaAdapter.connect(chain, url=url)
    ledger = _in_process(chain)
    assert isinstance(ledger, SvmLedger)
    return await SolanaAdapter.connect(chain, ledger=ledger)


def resolve_url(chain: EvmChain | SolanaChain, data_dir: str | Path | None) -> str | None:
    """The endpoint for `chain`: its rpc URL, the running devnet node, or None (in-process)."""
    if chain.rpc != "local":
        return chain.rpc
    return local_url(chain, data_dir) if data_dir is not None else None


def _in_process(chain: EvmChain | SolanaChain) -> AsyncEthereumTesterProvider | SvmLedger:
    existing = _IN_PROCESS.get(chain.name)
    if existing is None:
        existing = pyevm_provider(chain.chain_id) if isinstance(chain, EvmChain) else SvmLedger()
        _IN_PROCESS[chain.name] = existing
    return existing


async def fund_local(
    chain: EvmChain | SolanaChain, addresses: Sequence[str], *, data_dir: str | Path | None
) -> None:
    """Give `addresses` `local.fund_agents` coins on a local chain (devnet or in-process)."""
    if chain.rpc != "local":
        raise ChainError(f"chain {chain.name} is not local (rpc {chain.rpc}); fund it yourself")
    url = resolve_url(chain, data_dir)
    if url is not None:
        await fund_url(chain, url, addresses)
        return
    backend, amount = _in_process(chain), amount_for(chain)
    for address in addresses_for(chain, addresses):
        if isinstance(backend, SvmLedger):
            backend.airdrop(address, amount)
        else:
            tester = backend.ethereum_tester
            tester.send_transaction(
                {"from": tester.get_accounts()[0], "to": address, "value": amount, "gas": 21_000}
            )
