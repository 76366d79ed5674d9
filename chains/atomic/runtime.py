"""Wiring for a daemon: HTLC chains around the runtime's own adapters, and one
coordinator per agent, all sharing the store, the chains and the policy engine.

The runtime passes its adapters (one per chain, shared with its other executors so an
agent's nonces come from one place), the HTLC contract address or program id of each
chain, and its ``authorize`` callable; nothing here mints or holds an authorization.
"""

from __future__ import annotations

from collections.abc import Mapping

from chains.atomic.base import HtlcChain
from chains.base import ChainAdapter
from chains.families import family_of_chain
from config.errors import AtomicityError
from config.margins import Margins


def htlc_chains(
    adapters: Mapping[str, ChainAdapter],
    htlc: Mapping[str, str],
    *,
    margins: Margins,
    rpc_urls: Mapping[str, str] | None = None,
) -> dict[str, HtlcChain]:
    """An :class:`HtlcChain` for every chain named in `htlc` (chain -> contract address
    or program id), reading and sending through that chain's adapter. A chain configured
    `rpc: local` needs its devnet node's URL in `rpc_urls`: an in-process chain keeps no
    transaction history, which the escrows read claims from."""
    chains: dict[str, HtlcChain] = {}
    for name, address in htlc.items():
        adapter = adapters.get(name)
        if adapter is None:
            raise AtomicityError(
                f"no adapter for chain {name!r}, which has an HTLC at "
                f"{address}; chains with adapters: {sorted(adapters)}"
            )
        url = (rpc_urls or {}).get(name, adapter.chain.rpc)
        if url == "local":
            raise AtomicityError(f"chain {name} is `rpc: local`; pass its devnet URL")
        family = family_of_chain(adapter.chain)
        margin = margins.of(name, family.name)
        chains[name] = family.escrow(adapter, address, margin=margin)
    return chains
