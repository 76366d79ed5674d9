"""Prices behind USD figures, on real chains: Chainlink's MockV3Aggregator (compiled from
@chainlink/contracts) on anvil, a Pyth PriceUpdateV2 account in the LiteSVM server, read
through the chain adapters and judged by the policy engine against a moved clock.

Every fault has its negative control: the same action with a fresh, in-band, agreeing
price is authorized. No test waits on time: the policy clock and the feeds' published
timestamps are set explicitly.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from agents.prices import PriceReader
from chains.families.evm.adapter import EvmAdapter
from chains.families.evm.prices import local_feed_address, parse_round, set_local_chainlink
from chains.families.solana.adapter import SolanaAdapter
from chains.families.solana.prices import encode_price_update, local_account, set_local_pyth
from config.clock import to_us
from config.errors import ChainError
from config.models import Deployment
from config.prices import PYTH_RECEIVER
from policies.engine import Authorized, Denied, PolicyEngine
from policies.prices import FeedPrices
from policies.testing import FakeClock, make_action, make_evidence
from tests.chains.conftest import needs_anvil

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
T0_S = to_us(T0) // 1_000_000
CHAINLINK = {"kind": "chainlink", "chain": "evm-local", "address": "local", "max_age": "1h"}
PYTH = {
    "kind": "pyth",
    "chain": "solana-local",
    "account": "local",
    "max_age": "60s",
    "max_confidence": "0.01",
}

pytestmark = [needs_anvil, pytest.mark.anvil, pytest.mark.slow]


def deployment(prices: list[dict[str, Any]], policies: Sequence[dict[str, Any]]) -> Deployment:
    return Deployment.model_validate(
        {
            "name": "prices",
            "operator": {"name": "op"},
            "chains": [
                {"name": "evm-local", "family": "evm", "chain_id": 31337, "rpc": "local"},
                {"name": "solana-local", "family": "solana", "cluster": "localnet", "rpc": "local"},
            ],
            "assets": [
                {"symbol": "ETH", "chain": "evm-local", "native": True, "decimals": 18},
                {"symbol": "SOL", "chain": "solana-local", "native": True, "decimals": 9},
            ],
            "prices": prices,
            "planners": [{"name": "s", "kind": "scripted"}],
            "agents": [
                {
                    "name": "payer",
                    "schedule": {"every": "30s"},
                    "mandate": "Pay.",
                    "planner": "s",
                    "chains": ["evm-local", "solana-local"],
                    "policies": list(policies),
                }
            ],
        }
    )


LIMIT = [{"SpendLimit": {"per_transaction_usd": "500"}}]


class World:
    """A deployment's engine, its feed reader and the clock both use."""

    def __init__(self, deploy: Deployment, adapters: dict[str, Any]) -> None:
        self.clock = FakeClock(T0)
        self.prices = FeedPrices(deploy, self.clock)
        self.reader = PriceReader(deploy, self.prices, adapters, clock=self.clock)
        self.engine = PolicyEngine(deploy, clock=self.clock, prices=self.prices)
        self.plans = 0

    async def evaluate(self, amount: str, *, asset: str = "ETH") -> Authorized | Denied | Any:
        """Refresh the feeds (as the observer does), then evaluate a transfer."""
        await self.reader.refresh()
        self.plans += 1
        plan = f"plan-{self.plans}"
        chain = "evm-local" if asset == "ETH" else "solana-local"
        action = make_action(plan_id=plan, amount=amount, asset=asset, chain=chain)
        ctx = self.engine.context("payer", plan_id=plan, evidence=make_evidence("0.9"))
        return await self.engine.evaluate(action, ctx)

    def at(self, seconds_after_t0: int) -> None:
        """Move the one clock (readings older than the reader's reuse are read again)."""
        self.clock.set(T0 + timedelta(seconds=seconds_after_t0))


@pytest.fixture
async def evm(anvil_factory):
    node = anvil_factory(31337)
    chain = deployment([], []).chain("evm-local")
    adapter = await EvmAdapter.connect(chain, url=node.url)  # type: ignore[arg-type]
    yield node.url, adapter
    await adapter.close()


@pytest.fixture
async def sol(solana_server):
    chain = deployment([], []).chain("solana-local")
    adapter = await SolanaAdapter.connect(chain, url=solana_server.url)  # type: ignore[arg-type]
    yield solana_server.url, adapter
    await adapter.close()


async def test_a_price_that_doubles_keeps_a_usd_limit_in_usd(evm):
    url, adapter = evm
    world = World(
        deployment([{"symbol": "ETH", "sources": [CHAINLINK]}], LIMIT), {"evm-local": adapter}
    )
    await set_local_chainlink(url, "ETH", Decimal("3000"), T0_S)
    world.at(10)
    assert isinstance(await world.evaluate("0.15"), Authorized)  # $450 at $3000
    await set_local_chainlink(url, "ETH", Decimal("6000"), T0_S + 20)
    world.at(30)
    denied = await world.evaluate("0.15")  # the same 0.15 ETH is $900 now
    assert isinstance(denied, Denied)
    assert "$900.00 is above the per-transaction limit $500" in denied.reason
    assert isinstance(await world.evaluate("0.08"), Authorized)  # $480: still under, in USD


async def test_agents_refreshing_together_share_one_read_per_feed(evm):
    """Agents that start their ticks together all find the feed due before the first
    read returns; they share it. Negative control: once the reuse window has passed,
    the next refresh reads again."""
    url, adapter = evm
    world = World(
        deployment([{"symbol": "ETH", "sources": [CHAINLINK]}], LIMIT), {"evm-local": adapter}
    )
    await set_local_chainlink(url, "ETH", Decimal("3000"), T0_S)
    world.at(10)
    await asyncio.gather(*(world.reader.refresh() for _ in range(50)))
    assert world.reader.reads == 1
    world.at(12)
    await world.reader.refresh()
    assert world.reader.reads == 2


async def test_a_stale_feed_denies_naming_the_feed_and_its_age_and_trips_the_breaker(evm):
    url, adapter = evm
    policies: list[dict[str, Any]] = [
        {"ConfidenceBreaker": {"min_confidence": "0.5", "max_failures": 2}},
        *LIMIT,
    ]
    world = World(
        deployment([{"symbol": "ETH", "sources": [CHAINLINK]}], policies), {"evm-local": adapter}
    )
    address = await set_local_chainlink(url, "ETH", Decimal("3000"), T0_S)
    assert address == local_feed_address("ETH")
    world.at(3500)
    assert isinstance(await world.evaluate("0.1"), Authorized)  # 3500 s old, max 3600 s
    world.at(3700)
    denied = await world.evaluate("0.1")
    assert isinstance(denied, Denied)
    assert denied.cause == "price"
    assert f"price of ETH from chainlink {address} on evm-local: 3700 s old, max 3600 s" in (
        denied.reason
    )
    world.at(3701)
    assert isinstance(await world.evaluate("0.1"), Denied)  # the second price failure in a row
    await set_local_chainlink(url, "ETH", Decimal("3000"), T0_S + 3702)
    world.at(3710)
    opened = await world.evaluate("0.1")  # fresh again, but the breaker counted both
    assert isinstance(opened, Denied)
    assert "circuit breaker open" in opened.reason


async def test_sources_further_apart_than_max_deviation_deny(evm, sol):
    (evm_url, evm_adapter), (sol_url, sol_adapter) = evm, sol
    prices = [
        {"symbol": "ETH", "sources": [CHAINLINK, PYTH], "max_deviation": "0.02"},
    ]
    adapters = {"evm-local": evm_adapter, "solana-local": sol_adapter}
    world = World(deployment(prices, LIMIT), adapters)
    await set_local_chainlink(evm_url, "ETH", Decimal("3000"), T0_S)
    await set_local_pyth(sol_url, "ETH", Decimal("3150"), T0_S)  # 5% above
    world.at(5)
    denied = await world.evaluate("0.1")
    assert isinstance(denied, Denied)
    assert "5.00% apart, max 2.00%" in denied.reason
    assert f"pyth {local_account('ETH')} on solana-local says 3150" in denied.reason
    await set_local_pyth(sol_url, "ETH", Decimal("3030"), T0_S + 6)  # 1% above: agree
    world.at(10)
    allowed = await world.evaluate("0.1")
    assert isinstance(allowed, Authorized)
    quote = world.prices.quote("evm-local", "ETH", world.clock.now())
    assert quote is not None
    assert not isinstance(quote, str)
    assert getattr(quote, "usd", None) == Decimal("3030")  # the higher source values it


async def _write_account(url: str, address: str, owner: str, data: bytes) -> None:
    fields = {"lamports": 10**7, "owner": owner, "data": base64.b64encode(data).decode()}
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(
            url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "covenant_setAccount",
                "params": [address, fields],
            },
        )
        assert "error" not in reply.json()


async def test_a_pyth_account_of_another_owner_or_too_wide_is_refused(sol):
    url, adapter = sol
    world = World(
        deployment([{"symbol": "SOL", "sources": [PYTH]}], LIMIT), {"solana-local": adapter}
    )
    account = local_account("SOL")
    good = encode_price_update(150_00000000, 15_000000, -8, T0_S)  # ±0.1%
    impostor = "11111111111111111111111111111111"
    await _write_account(url, account, impostor, good)
    world.at(5)
    denied = await world.evaluate("1", asset="SOL")
    assert isinstance(denied, Denied)
    assert f"is owned by {impostor}, not the Pyth receiver {PYTH_RECEIVER}" in denied.reason
    wide = encode_price_update(150_00000000, 3_00000000, -8, T0_S)  # ±2%, max 1%
    await _write_account(url, account, PYTH_RECEIVER, wide)
    world.at(10)
    denied = await world.evaluate("1", asset="SOL")
    assert isinstance(denied, Denied)
    assert "confidence ±3 is wider than 0.01 of 150" in denied.reason
    await _write_account(url, account, PYTH_RECEIVER, good)
    world.at(15)
    assert isinstance(await world.evaluate("1", asset="SOL"), Authorized)  # $150, in band
    assert isinstance(await world.evaluate("4", asset="SOL"), Denied)  # $600: the limit holds


def test_chainlink_answers_at_or_below_zero_or_never_updated_are_refused():
    def words(answer: int, updated: int) -> bytes:
        signed = answer.to_bytes(32, "big", signed=True)
        return b"".join(
            [
                (1).to_bytes(32, "big"),
                signed,
                (1).to_bytes(32, "big"),
                updated.to_bytes(32, "big"),
                (1).to_bytes(32, "big"),
            ]
        )

    eight = (8).to_bytes(32, "big")
    assert parse_round(words(300012345678, T0_S), eight, "feed").usd == Decimal("3000.12345678")
    for answer, updated, why in [
        (0, T0_S, "above zero"),
        (-5, T0_S, "above zero"),
        (3000, 0, "updatedAt 0"),
    ]:
        with pytest.raises(ChainError, match=why):
            parse_round(words(answer, updated), eight, "feed")
