"""Price reads through the chain adapters, and what the runtime's reuse saves.

    python bench/bench_prices.py [--reads 300] [--agents 1000]

Starts the local chains with `devnet up` (anvil, the LiteSVM RPC server) with a local
Chainlink feed (MockV3Aggregator) and a local Pyth PriceUpdateV2 account, then:

1. reads each feed `--reads` times in a row through its family's `read_price` and the
   chain's adapter, uncached: reads per second, and the time of one read (p50);
2. `--agents` agents starting their ticks within one second each call
   `PriceReader.refresh` (what the observer does): how many feed reads that costs (one
   per feed while a reading is reused, within a block or a slot) and refreshes per
   second. Target: one read per feed per second however many agents tick.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.prices import PriceReader, feed_address
from chains.connect import connect
from chains.devnet import manager as devnet
from chains.families import family_of_chain
from config.models import Deployment
from config.prices import OnChainFeed
from policies.prices import FeedPrices


def _deployment(data_dir: Path) -> Deployment:
    local = {"max_age": "1h", "local_price": "3000"}
    return Deployment.model_validate(
        {
            "name": "bench-prices",
            "data_dir": str(data_dir),
            "operator": {"name": "op"},
            "chains": [
                {"name": "evm-local", "family": "evm", "chain_id": 31337, "rpc": "local"},
                {"name": "sol-local", "family": "solana", "cluster": "localnet", "rpc": "local"},
            ],
            "assets": [
                {"symbol": "ETH", "chain": "evm-local", "native": True, "decimals": 18},
                {"symbol": "SOL", "chain": "sol-local", "native": True, "decimals": 9},
            ],
            "prices": [
                {
                    "symbol": "ETH",
                    "sources": [
                        {"kind": "chainlink", "chain": "evm-local", "address": "local", **local}
                    ],
                },
                {
                    "symbol": "SOL",
                    "sources": [
                        {
                            "kind": "pyth",
                            "chain": "sol-local",
                            "account": "local",
                            "max_age": "1h",
                            "local_price": "150",
                        }
                    ],
                },
            ],
            "planners": [{"name": "s", "kind": "scripted"}],
        }
    )


async def _uncached(deployment: Deployment, reads: int) -> None:
    for entry in deployment.prices:
        feed = entry.sources[0]
        assert isinstance(feed, OnChainFeed)
        chain = deployment.chain(feed.chain)
        address = feed_address(deployment, entry.symbol, feed)
        family = family_of_chain(chain)
        async with await connect(chain, data_dir=deployment.data_dir) as adapter:
            await family.read_price(adapter, feed, address)  # warm the connection
            times = []
            started = time.perf_counter()
            for _ in range(reads):
                one = time.perf_counter()
                reading = await family.read_price(adapter, feed, address)
                times.append(time.perf_counter() - one)
            elapsed = time.perf_counter() - started
        print(
            f"{feed.kind:<9} {entry.symbol} on {chain.name:<9}: {reads / elapsed:7.0f} reads/s, "
            f"p50 {statistics.median(times) * 1000:.2f} ms  (USD {reading.usd})"
        )


async def _reused(deployment: Deployment, agents: int) -> bool:
    adapters = {}
    for chain in deployment.chains:
        adapters[chain.name] = await connect(chain, data_dir=deployment.data_dir)
    try:
        reader = PriceReader(deployment, FeedPrices(deployment), adapters)
        started = time.perf_counter()
        await asyncio.gather(*(reader.refresh() for _ in range(agents)))
        elapsed = time.perf_counter() - started
    finally:
        for adapter in adapters.values():
            await adapter.close()
    feeds = len(deployment.prices)
    met = reader.reads <= feeds * max(1, int(elapsed) + 1)
    print(
        f"{agents} agents refreshing within {elapsed:.3f} s: {reader.reads} feed reads for "
        f"{feeds} feeds ({agents / elapsed:,.0f} refreshes/s); target one read per feed "
        f"per second: {'met' if met else 'MISSED'}"
    )
    return met


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--reads", type=int, default=300)
    cli.add_argument("--agents", type=int, default=1000)
    args = cli.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        deployment = _deployment(Path(directory))
        asyncio.run(devnet.up(deployment))
        try:
            asyncio.run(_uncached(deployment, args.reads))
            met = asyncio.run(_reused(deployment, args.agents))
        finally:
            devnet.down(deployment)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
