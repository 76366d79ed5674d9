"""The local price feeds of a devnet: installed by `devnet up` for every `prices:` source
whose address is `local`, moved by `devnet price FILE SYMBOL VALUE`.

Each chain's family writes its own kind of feed (a Chainlink MockV3Aggregator on anvil,
a Pyth PriceUpdateV2 account in LiteSVM) at an address derived from the symbol.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from chains.devnet.manager import local_url
from chains.families import family_of_chain
from config.clock import to_us, utc_now
from config.errors import ChainError
from config.models import Deployment
from config.prices import LOCAL, ChainlinkFeed, FixedPrice, OnChainFeed


def local_feeds(deployment: Deployment, symbol: str | None = None) -> list[OnChainFeed]:
    """The `local` on-chain sources pricing `symbol` (default: every symbol)."""
    found = []
    for entry in deployment.prices:
        if symbol is not None and entry.symbol != symbol:
            continue
        for source in entry.sources:
            if isinstance(source, FixedPrice):
                continue
            address = source.address if isinstance(source, ChainlinkFeed) else source.account
            if address == LOCAL:
                found.append(source)
    return found


async def set_price(
    deployment: Deployment, symbol: str, usd: Decimal, published_at: int | None = None
) -> list[tuple[str, str]]:
    """Publish `usd` for `symbol` on every local feed of it (at `published_at`, default
    now); returns (chain, feed address) of each feed moved."""
    feeds = local_feeds(deployment, symbol)
    if not feeds:
        raise ChainError(
            f"no `local` price source of {symbol} in prices:; add one such as "
            "`{kind: chainlink, chain: <local chain>, address: local, max_age: 1h}`"
        )
    when = published_at if published_at is not None else to_us(utc_now()) // 1_000_000
    moved = []
    for feed in feeds:
        chain = deployment.chain(feed.chain)
        url = local_url(chain, Path(deployment.data_dir or "."))
        if url is None:
            raise ChainError(f"local chain {feed.chain} is not running; run `devnet up` first")
        address = await family_of_chain(chain).set_local_price(url, symbol, usd, when)
        moved.append((feed.chain, address))
    return moved


async def install_prices(deployment: Deployment) -> None:
    """Publish each local feed's `local_price` (what `devnet up` does)."""
    for entry in deployment.prices:
        for feed in local_feeds(deployment, entry.symbol):
            if feed.local_price is not None:
                await set_price(deployment, entry.symbol, feed.local_price)
                break  # set_price moved every local feed of the symbol at once
