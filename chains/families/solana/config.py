"""The configuration of a Solana cluster, and the genesis hashes of the public ones."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from config.chain_model import ChainModel, LocalChain, Model
from config.types import Name, SolanaAddress

SolanaCluster = Literal["mainnet-beta", "devnet", "testnet", "localnet"]


class SolanaFinality(Model):
    """Commitment at which a Solana transaction counts as final."""

    commitment: Literal["confirmed", "finalized"] = "confirmed"


class SolanaFees(Model):
    """Compute budget for every transaction."""

    compute_unit_limit: int = Field(default=200_000, gt=0, le=1_400_000)
    priority_fee_microlamports: int = Field(default=0, ge=0, le=10**12)


SOLANA_GENESIS: dict[str, str] = {
    "mainnet-beta": "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d",
    "devnet": "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG",
    "testnet": "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3zQawwpjk2NsNY",
}
"""Genesis hashes of the public Solana clusters: the Solana analogue of a chain id (the
adapter and doctor check an endpoint by it; CAIP-2 ids of accounts are built from it)."""


class SolanaChain(ChainModel):
    """A Solana cluster."""

    name: Name
    family: Literal["solana"]
    cluster: SolanaCluster
    rpc: str = Field(description="An http(s) URL, or `local` for a devnet chain.")
    finality: SolanaFinality = SolanaFinality()
    fees: SolanaFees = SolanaFees()
    local: LocalChain = LocalChain()
    htlc: Literal["local"] | SolanaAddress | None = Field(
        default=None,
        description="The HTLC program id for all-or-nothing actions on this chain; `local` "
        "on an `rpc: local` chain has the devnet load the project's own build.",
    )
