"""Where a chain's HTLC is: its configured address, or, for `htlc: local`, where the
chain's family installs the project's own build on a local chain."""

from __future__ import annotations

from chains.families import family_of_chain
from config.chain_model import ChainModel


def htlc_address(chain: ChainModel) -> str | None:
    """The chain's HTLC contract address or program id; None if it has none."""
    if chain.htlc != "local":
        return chain.htlc
    return family_of_chain(chain).local_escrow()
