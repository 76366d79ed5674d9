"""Judging prices at evaluation time: is the cached reading of every source of an asset
fresh, in band and in agreement? Only then does a USD figure exist.

Feeds are read ahead of evaluation (asynchronously, by ``agents/prices.py`` through the
chain adapters) and recorded here with their read time and their on-chain timestamp.
Evaluation stays synchronous and does no I/O: :meth:`FeedPrices.quote` judges what was
recorded against the policy clock. A reading is aged by its on-chain timestamp, which is
never later than the moment it was read, so a reading cached for a while only gets older.

A problem is a :class:`PriceProblem` whose reason names the feed and its age. The policy
that needed the figure denies with :func:`price_deny`, which marks the denial so the
engine shows it to the agent's policies as a failure (the ConfidenceBreaker counts it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from config.clock import to_us
from config.models import Deployment
from config.prices import AssetPrice, FeedReading, FixedPrice, OnChainFeed, PriceFeed
from config.types import plain_amount
from policies.actions import Intent, ProposedAction
from policies.base import Clock, Deny, PriceSource, SystemClock

FeedKey = tuple[str, OnChainFeed]
"""(symbol, feed): a `local` feed's address depends on the symbol it prices."""


@dataclass(frozen=True, slots=True)
class Quote:
    """A judged USD price: the highest of the sources (so a limit is never loosened by
    the lower one), and what each source said, for observations and audit."""

    usd: Decimal
    sources: tuple[SourcePrice, ...]


@dataclass(frozen=True, slots=True)
class SourcePrice:
    """One source's price and age (None for a fixed price, which has no age)."""

    source: str
    usd: Decimal
    age: int | None


@dataclass(frozen=True, slots=True)
class PriceProblem:
    """Why there is no usable price; `reason` names the feed and its age."""

    reason: str


@dataclass(frozen=True, slots=True)
class _Observed:
    reading: FeedReading | None
    error: str | None
    read_at: datetime
    label: str


def price_deny(problem: PriceProblem) -> Deny:
    """The denial of an action whose USD figure has no usable price (counted as a failure
    by the breaker)."""
    return Deny(reason=problem.reason, cause="price")


class FeedPrices(PriceSource):
    """Prices from the deployment's `prices:` (and legacy `assets[].usd_price`), judged
    from the readings recorded by the feed reader."""

    def __init__(self, deployment: Deployment, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._config: dict[str, AssetPrice] = {p.symbol: p for p in deployment.prices}
        for asset in deployment.assets:
            if asset.usd_price is not None and asset.symbol not in self._config:
                # The old fixed price is a `fixed` source, per chain as it always was.
                self._config[f"{asset.symbol}@{asset.chain}"] = AssetPrice(
                    symbol=asset.symbol, sources=[FixedPrice(kind="fixed", usd=asset.usd_price)]
                )
        self._seen: dict[FeedKey, _Observed] = {}

    def priced(self, chain: str, asset: str) -> AssetPrice | None:
        """How `asset` on `chain` is priced, or None if it is not."""
        return self._config.get(asset) or self._config.get(f"{asset}@{chain}")

    def feeds(self) -> list[FeedKey]:
        """Every on-chain feed to read, with the symbol it prices."""
        keys = [(p.symbol, s) for p in self._config.values() for s in p.sources]
        return [(symbol, s) for symbol, s in keys if not isinstance(s, FixedPrice)]

    def record(
        self, key: FeedKey, reading: FeedReading, read_at: datetime, label: str | None = None
    ) -> None:
        """Keep what `key` showed when read at `read_at`; `label` names the feed as read
        (a `local` feed's real address)."""
        self._seen[key] = _Observed(reading, None, read_at, label or key[1].label())

    def record_failure(
        self, key: FeedKey, error: str, read_at: datetime, label: str | None = None
    ) -> None:
        """Keep why `key` could not be read (or was refused) at `read_at`: its last good
        reading is dropped, so a feed that turned bad is never judged by older data."""
        self._seen[key] = _Observed(None, error, read_at, label or key[1].label())

    def read_at(self, key: FeedKey) -> datetime | None:
        """When `key` was last read, or None."""
        seen = self._seen.get(key)
        return seen.read_at if seen is not None else None

    def usd_price(self, chain: str, asset: str) -> Decimal | None:
        """The judged price now, or None if there is no usable one."""
        quote = self.quote(chain, asset, self._clock.now())
        return quote.usd if isinstance(quote, Quote) else None

    def quote(self, chain: str, asset: str, now: datetime) -> Quote | PriceProblem | None:
        """The price of `asset` on `chain` judged at `now`; None if it is not priced."""
        config = self.priced(chain, asset)
        if config is None:
            return None
        judged: list[SourcePrice] = []
        for source in config.sources:
            one = self._judge(config.symbol, source, now)
            if isinstance(one, PriceProblem):
                return one
            judged.append(one)
        return _agreed(config, judged)

    def _judge(self, symbol: str, source: PriceFeed, now: datetime) -> SourcePrice | PriceProblem:
        if isinstance(source, FixedPrice):
            return SourcePrice(source.label(), source.usd, None)
        seen = self._seen.get((symbol, source))
        if seen is None:
            return PriceProblem(
                f"price of {symbol} from {source.label()}: not read yet; is the chain reachable?"
            )
        where = f"price of {symbol} from {seen.label}"
        if seen.reading is None:
            return PriceProblem(f"{where}: refused at {seen.read_at:%H:%M:%S}: {seen.error}")
        reading = seen.reading
        age = max(0, to_us(now) // 1_000_000 - reading.published_at)
        limit = int(source.max_age)
        if age > limit:
            return PriceProblem(f"{where}: {age} s old, max {limit} s")
        band = getattr(source, "max_confidence", None)
        wide = band is not None and reading.confidence is not None
        if wide and reading.confidence > reading.usd * band:  # type: ignore[operator]
            return PriceProblem(
                f"{where}: confidence ±{plain_amount(reading.confidence)} is wider than "  # type: ignore[arg-type]
                f"{band} of {plain_amount(reading.usd)} ({age} s old)"
            )
        return SourcePrice(seen.label, reading.usd, age)


def _agreed(config: AssetPrice, judged: list[SourcePrice]) -> Quote | PriceProblem:
    low = min(judged, key=lambda s: s.usd)
    high = max(judged, key=lambda s: s.usd)
    limit = config.max_deviation
    if limit is not None and high.usd - low.usd > low.usd * limit:
        spread = (high.usd - low.usd) / low.usd
        return PriceProblem(
            f"price of {config.symbol}: {high.source} says {plain_amount(high.usd)} "
            f"({_age(high)}), {low.source} says {plain_amount(low.usd)} ({_age(low)}): "
            f"{spread:.2%} apart, max {limit:.2%}"
        )
    return Quote(high.usd, tuple(judged))


def _age(source: SourcePrice) -> str:
    return "fixed" if source.age is None else f"{source.age} s old"


def usd_value(
    prices: PriceSource, action: ProposedAction | Intent, now: datetime
) -> Decimal | PriceProblem | None:
    """What `action` is worth in USD at `now`: a figure, why there is none that may be
    used, or None if its asset is not priced at all. Every USD figure of the policies
    comes from here."""
    if isinstance(prices, FeedPrices):
        quote = prices.quote(action.chain, action.asset, now)
        if quote is None or isinstance(quote, PriceProblem):
            return quote
        return action.amount * quote.usd
    price = prices.usd_price(action.chain, action.asset)
    return None if price is None else action.amount * price
