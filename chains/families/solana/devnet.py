"""The Solana family's local chains: a LiteSVM JSON-RPC server per chain, its airdrop,
and the HTLC program it loads at the well-known local program id when it starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chains.families.solana.config import SolanaChain
from chains.families.solana.htlc_client import LOCAL_PROGRAM_ID
from chains.htlc.solana.build import ELF_PATH

if TYPE_CHECKING:
    from chains.devnet._fund import NodeCall


def program_args(chain: SolanaChain) -> list[str]:
    """Arguments that make the devnet Solana server load the local HTLC program."""
    return ["--program", f"{LOCAL_PROGRAM_ID}={ELF_PATH}"] if chain.htlc == "local" else []


async def fund(call: NodeCall, address: str, amount: int) -> None:
    """The server airdrops: nothing is signed."""
    await call("requestAirdrop", [address, amount])
