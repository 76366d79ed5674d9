"""One entry point from a configured chain to a connected adapter.

`rpc: local` resolves to the devnet node `devnet up` started for that chain; when none
is running (the zero-install demo) it falls back to an in-process chain of the chain's
family, one per chain name and shared by every adapter in this process, so all agents
see the same ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import Engine

from chains.base import ChainAdapter
from chains.devnet._fund import addresses_for, amount_for, fund_url
from chains.devnet.manager import local_url
from chains.families import family_of_chain
from config.chain_model import ChainModel
from config.errors import ChainError

_IN_PROCESS: dict[str, object] = {}


async def connect(
    chain: ChainModel,
    *,
    data_dir: str | Path | None = None,
    engine: Engine | None = None,
) -> ChainAdapter:
    """A connected adapter for `chain` (nonces kept in `engine`'s store when given)."""
    family = family_of_chain(chain)
    url = resolve_url(chain, data_dir)
    if url is not None:
        return await family.connect(chain, url, engine)
    return await family.connect_in_process(chain, _in_process(chain), engine)


def resolve_url(chain: ChainModel, data_dir: str | Path | None) -> str | None:
    """The endpoint for `chain`: its rpc URL, the running devnet node, or None (in-process)."""
    if chain.rpc != "local":
        return chain.rpc
    return local_url(chain, data_dir) if data_dir is not None else None


def _in_process(chain: ChainModel) -> object:
    existing = _IN_PROCESS.get(chain.name)
    if existing is None:
        existing = family_of_chain(chain).in_process(chain)
        _IN_PROCESS[chain.name] = existing
    return existing


async def fund_local(
    chain: ChainModel,
    addresses: Sequence[str],
    *,
    data_dir: str | Path | None,
    tokens: Sequence[str] = (),
) -> None:
    """Give `addresses` `local.fund_agents` coins on a local chain (devnet or in-process),
    and `local.fund_tokens` of each local token in `tokens` (devnet only)."""
    if chain.rpc != "local":
        raise ChainError(f"chain {chain.name} is not local (rpc {chain.rpc}); fund it yourself")
    url = resolve_url(chain, data_dir)
    if url is not None:
        await fund_url(chain, url, addresses, tokens)
        return
    if tokens:
        raise ChainError(
            f"chain {chain.name} runs in-process, which has no local tokens ({', '.join(tokens)}); "
            "run scripts/setup.sh so `run` starts real local nodes"
        )
    family, backend, amount = family_of_chain(chain), _in_process(chain), amount_for(chain)
    for address in addresses_for(chain, addresses):
        family.fund_in_process(backend, address, amount)
