"""Reading price feeds ahead of evaluation: each on-chain source of `prices:` through its
chain's adapter, concurrently, recorded in :class:`policies.prices.FeedPrices` with the
time it was read and the feed's own timestamp.

Policies evaluate synchronously and never wait on a chain: the observer refreshes the
readings of an agent's assets at the start of its tick, and the policies judge them at
evaluation time against their clock. A feed read less than :data:`REUSE` ago is not read
again (a block or slot rarely moves faster), and agents that find a feed due while a
read of it is in flight share that read, so agents ticking together cost one read per
feed. A read that fails or is refused replaces the last good reading, so a feed that
turned bad is never judged by older data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta

from chains.base import ChainAdapter
from chains.families import family_of_chain
from config.errors import ChainError
from config.models import Asset, Deployment
from config.prices import LOCAL, ChainlinkFeed, OnChainFeed
from policies.base import Clock, SystemClock
from policies.prices import FeedKey, FeedPrices

log = logging.getLogger(__name__)

REUSE = timedelta(seconds=1)
"""How long a reading is reused before the feed is read again."""


def feed_address(deployment: Deployment, symbol: str, feed: OnChainFeed) -> str:
    """The address `feed` is read at: as configured, or the local feed of `symbol`."""
    address = feed.address if isinstance(feed, ChainlinkFeed) else feed.account
    if address != LOCAL:
        return address
    return family_of_chain(deployment.chain(feed.chain)).local_price_feed(symbol)


class PriceReader:
    """Reads the deployment's feeds into one :class:`FeedPrices`."""

    def __init__(
        self,
        deployment: Deployment,
        prices: FeedPrices,
        adapters: dict[str, ChainAdapter],
        *,
        clock: Clock | None = None,
        reuse: timedelta = REUSE,
    ) -> None:
        self.deployment = deployment
        self.prices = prices
        self.adapters = adapters
        self.clock = clock or SystemClock()
        self.reuse = reuse
        self.reads = 0
        """Feed reads sent so far (reused readings not counted)."""
        self._reading: dict[FeedKey, asyncio.Task[None]] = {}

    async def refresh(self, assets: Iterable[Asset] | None = None) -> None:
        """Read every feed pricing `assets` (default: all) unless read within `reuse`."""
        wanted = None if assets is None else {a.symbol for a in assets}
        now = self.clock.now()
        due: list[asyncio.Future[None]] = []
        for key in self.prices.feeds():
            last = self.prices.read_at(key)
            if (wanted is None or key[0] in wanted) and (last is None or now - last >= self.reuse):
                # Shielded: one agent's tick cancelled must not cancel the others' read.
                due.append(asyncio.shield(self._read_once(key)))
        await asyncio.gather(*due)

    def _read_once(self, key: FeedKey) -> asyncio.Task[None]:
        # Agents ticking together all find a feed due before the first read returns:
        # they share the read in flight instead of each sending one.
        task = self._reading.get(key)
        if task is None or task.done():
            task = asyncio.ensure_future(self._read(key))
            self._reading[key] = task
        return task

    async def _read(self, key: FeedKey) -> None:
        symbol, feed = key
        read_at = self.clock.now()
        adapter = self.adapters.get(feed.chain)
        if adapter is None:
            self.prices.record_failure(key, f"no connection to chain {feed.chain}", read_at)
            return
        address = feed_address(self.deployment, symbol, feed)
        label = f"{feed.kind} {address} on {feed.chain}"
        family = family_of_chain(self.deployment.chain(feed.chain))
        self.reads += 1
        try:
            reading = await family.read_price(adapter, feed, address)
        except ChainError as exc:
            log.warning("price of %s from %s: %s", symbol, label, exc)
            self.prices.record_failure(key, str(exc), read_at, label)
            return
        self.prices.record(key, reading, read_at, label)
