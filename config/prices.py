"""Where USD prices come from: the `prices:` section of a deployment, and what a feed read
shows.

Each entry prices one asset symbol (every asset of that symbol, on any chain) from one or
more sources: a Chainlink AggregatorV3 on an EVM chain, a Pyth price-update account on
Solana, or a fixed number, which must be chosen explicitly. The policies judge a reading
(:mod:`policies.prices`); the chain families read them (their ``prices.py``).

Money stays exact: prices are :class:`~decimal.Decimal` built from the feeds' integers
and exponents, never floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from config.chain_model import Model
from config.types import (
    Duration,
    Name,
    PositiveAmount,
    _evm_address,
    _solana_address,
    _to_decimal,
)

if TYPE_CHECKING:
    from config.models import Deployment

PYTH_RECEIVER = "rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ"
"""The Pyth Solana receiver program, which owns every PriceUpdateV2 account on mainnet
and devnet (docs.pyth.network, "Contract Addresses: Solana")."""

LOCAL = "local"
"""An address of `local`: the feed `devnet up` installs on a local chain."""


def _fraction(value: Decimal) -> Decimal:
    if not Decimal(0) < value < Decimal(1):
        raise ValueError(f"{value} must be a fraction between 0 and 1, e.g. '0.02' for 2%")
    return value


Fraction = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_fraction)]
"""A fraction strictly between 0 and 1, as a quoted decimal ('0.02' is 2%)."""


def _or_local(check: Any) -> Any:
    def validate(value: Any) -> str:
        return LOCAL if value == LOCAL else str(check(value))

    return BeforeValidator(validate)


class ChainlinkFeed(Model):
    """A Chainlink AggregatorV3 (its proxy) on an EVM chain of this deployment."""

    kind: Literal["chainlink"]
    chain: Name
    address: Annotated[str, _or_local(_evm_address)] = Field(
        description="The feed's proxy address, or `local` for the one `devnet up` deploys."
    )
    max_age: Duration = Field(description="Oldest `updatedAt` accepted, e.g. '1h'.")
    local_price: PositiveAmount | None = Field(
        default=None, description="For `address: local`: the answer `devnet up` publishes first."
    )

    def label(self) -> str:
        """How reasons name this feed."""
        return f"chainlink {self.address} on {self.chain}"


class PythFeed(Model):
    """A Pyth price-update account (PriceUpdateV2) on a Solana chain of this deployment."""

    kind: Literal["pyth"]
    chain: Name
    account: Annotated[str, _or_local(_solana_address)] = Field(
        description="The price-update account, or `local` for the one `devnet up` writes."
    )
    max_age: Duration = Field(description="Oldest `publish_time` accepted, e.g. '60s'.")
    max_confidence: Fraction = Field(
        default=Decimal("0.01"),
        description="Widest confidence interval accepted, as a fraction of the price.",
    )
    receiver: Annotated[str, BeforeValidator(_solana_address)] = Field(
        default=PYTH_RECEIVER, description="The program that must own the account."
    )
    local_price: PositiveAmount | None = Field(
        default=None, description="For `account: local`: the price `devnet up` writes first."
    )

    def label(self) -> str:
        """How reasons name this feed."""
        return f"pyth {self.account} on {self.chain}"


class FixedPrice(Model):
    """A fixed USD price: no feed, never stale. Chosen explicitly, never a fallback."""

    kind: Literal["fixed"]
    usd: PositiveAmount

    def label(self) -> str:
        """How reasons name this source."""
        return f"fixed ${self.usd}"


PriceFeed = Annotated[ChainlinkFeed | PythFeed | FixedPrice, Field(discriminator="kind")]
"""One source of an asset's price, chosen by `kind`."""

OnChainFeed = ChainlinkFeed | PythFeed


class AssetPrice(Model):
    """How to price one asset symbol: its sources and how far apart they may be."""

    symbol: str = Field(pattern=r"^[A-Z][A-Z0-9.]{0,15}$")
    sources: list[PriceFeed] = Field(min_length=1)
    max_deviation: Fraction | None = Field(
        default=None,
        description="Largest spread between sources, as a fraction of the lowest; "
        "required with more than one source.",
    )

    @model_validator(mode="after")
    def _deviation_with_sources(self) -> AssetPrice:
        if len(self.sources) > 1 and self.max_deviation is None:
            raise ValueError(
                f"prices of {self.symbol} name {len(self.sources)} sources; set "
                "max_deviation (e.g. '0.02') to say how far apart they may be"
            )
        return self


@dataclass(frozen=True, slots=True)
class FeedReading:
    """What one on-chain feed showed when it was read.

    `usd` is exact (the feed's integer answer scaled by its decimals or exponent);
    `published_at` is the feed's own timestamp (Chainlink `updatedAt`, Pyth
    `publish_time`) in Unix seconds; `confidence` is Pyth's interval in USD.
    """

    usd: Decimal
    published_at: int
    confidence: Decimal | None = None


def feeds_of(deployment: Deployment) -> list[OnChainFeed]:
    """Every on-chain feed of the deployment, once each (several symbols may share one)."""
    found: dict[OnChainFeed, None] = {}
    for entry in deployment.prices:
        for source in entry.sources:
            if not isinstance(source, FixedPrice):
                found.setdefault(source)
    return list(found)
