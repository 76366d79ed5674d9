"""Give agents native coins on local chains, through the node's own faucet.

Nothing here signs: anvil sets balances (``anvil_setBalance``), the LiteSVM server and
ledger airdrop (``requestAirdrop``), and py-evm's tester sends from accounts the node
itself holds unlocked, as a node's faucet does.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import httpx

from config.errors import ChainError, RpcUnreachable
from config.models import EvmChain, SolanaChain

WEI_PER_ETH = 10**18
LAMPORTS_PER_SOL = 10**9


def amount_for(chain: EvmChain | SolanaChain) -> int:
    """`local.fund_agents` native coins in base units."""
    unit = WEI_PER_ETH if isinstance(chain, EvmChain) else LAMPORTS_PER_SOL
    return int(chain.local.fund_agents * Decimal(unit))


def addresses_for(chain: EvmChain | SolanaChain, addresses: Sequence[str]) -> list[str]:
    """The addresses that belong to `chain`'s family (0x… for EVM, base58 for Solana)."""
    evm = isinstance(chain, EvmChain)
    return [a for a in addresses if a.startswith("0x") == evm]


async def fund_url(chain: EvmChain | SolanaChain, url: str, addresses: Sequence[str]) -> None:
    """Fund every address of `chain`'s family on the devnet node at `url`."""
    amount = amount_for(chain)
    async with httpx.AsyncClient(timeout=10) as client:
        for address in addresses_for(chain, addresses):
            if isinstance(chain, EvmChain):
                await _call(client, url, "anvil_setBalance", [address, hex(amount)])
            else:
                await _call(client, url, "requestAirdrop", [address, amount])


async def _call(client: httpx.AsyncClient, url: str, method: str, params: list[object]) -> None:
    try:
        reply = await client.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
    except httpx.HTTPError as exc:
        raise RpcUnreachable(f"devnet node {url} unreachable while funding: {exc}") from exc
    error = reply.json().get("error")
    if error is not None:
        raise ChainError(f"devnet node {url} refused {method} {params[0]}: {error}")
