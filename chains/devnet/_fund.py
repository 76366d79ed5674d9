"""Give agents native coins and local tokens on local chains, through the node's own
faucet.

Nothing here signs: each family's node funds accounts itself (anvil sets balances and
mints local tokens from an impersonated account, the LiteSVM server airdrops and writes
token accounts), and in-process chains pay from accounts the node holds, as a node's
faucet does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import httpx

from chains.families import family_of_chain
from config.chain_model import ChainModel
from config.errors import ChainError, RpcUnreachable
from config.models import Deployment

NodeCall = Callable[[str, list[object]], Awaitable[None]]
"""A JSON-RPC call (method, params) to one local node; raises if the node refuses."""


def amount_for(chain: ChainModel) -> int:
    """`local.fund_agents` native coins in base units."""
    return int(chain.local.fund_agents * Decimal(family_of_chain(chain).native_unit()))


def addresses_for(chain: ChainModel, addresses: Sequence[str]) -> list[str]:
    """The addresses that belong to `chain`'s family."""
    family = family_of_chain(chain)
    return [address for address in addresses if family.owns_address(address)]


def local_tokens(deployment: Deployment, chain: ChainModel) -> list[str]:
    """The addresses of `chain`'s assets declared `local` (its family's local tokens)."""
    family = family_of_chain(chain)
    found = []
    for asset in deployment.assets:
        token = getattr(asset, family.asset_field) if asset.chain == chain.name else None
        if token is not None and token == family.local_token(asset.symbol):
            found.append(token)
    return found


async def fund_url(
    chain: ChainModel, url: str, addresses: Sequence[str], tokens: Sequence[str] = ()
) -> None:
    """Fund every address of `chain`'s family on the devnet node at `url` with native
    coins and each local token of `tokens`."""
    amount, family = amount_for(chain), family_of_chain(chain)
    token_amount = int(chain.local.fund_tokens.scaleb(family.local_token_decimals))
    async with httpx.AsyncClient(timeout=10) as client:

        async def call(method: str, params: list[object]) -> None:
            await node_call(client, url, method, params, doing="funding")

        for address in addresses_for(chain, addresses):
            await family.fund_node(call, address, amount)
            for token in tokens:
                await family.fund_local_token(url, token, address, token_amount)


async def node_call(
    client: httpx.AsyncClient, url: str, method: str, params: list[object], *, doing: str
) -> str:
    """The result of `method` on the local node at `url`, as text."""
    return str(await node_result(client, url, method, params, doing=doing))


async def node_result(
    client: httpx.AsyncClient, url: str, method: str, params: list[object], *, doing: str
) -> Any:
    """The result of `method` on the local node at `url` as JSON-RPC gave it (None
    included); ChainError if the node refuses (`doing` names the errors' task)."""
    try:
        reply = await client.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
    except httpx.HTTPError as exc:
        raise RpcUnreachable(f"devnet node {url} unreachable while {doing}: {exc}") from exc
    body = reply.json()
    if "error" in body:
        raise ChainError(f"devnet node {url} refused {method} {params[0]}: {body['error']}")
    return body["result"]
