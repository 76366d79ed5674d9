"""Memory is rebuilt from the store on start, and one engine per store is enforced."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine as SqlEngine

from config.store import open_store
from policies import Authorized, Denied, Outcome, PolicyEngine
from policies._tables import spend_ledger
from policies.testing import FakeClock, make_action, make_deployment, make_evidence

POLICIES: list[dict[str, Any]] = [
    {"RateLimit": {"max_actions": 4, "per": "1h"}},
    {"SpendLimit": {"per_day": {"ETH": "1"}, "per_day_usd": "100000"}},
]


def _engine(store: SqlEngine, clock: FakeClock) -> PolicyEngine:
    return PolicyEngine(make_deployment(POLICIES), store, clock=clock)


async def _pay(engine: PolicyEngine, amount: str, serial: int) -> Outcome:
    action = make_action(amount=amount, plan_id="p", digest=serial.to_bytes(32, "big"))
    ctx = engine.context("payer", plan_id="p", evidence=make_evidence())
    return await engine.evaluate(action, ctx)


async def test_a_restart_rebuilds_windows_and_rate_slots_from_the_store(
    store: SqlEngine, clock: FakeClock
) -> None:
    first = _engine(store, clock)
    for serial, amount in enumerate(("0.2", "0.3", "0.1"), start=1):
        assert isinstance(await _pay(first, amount, serial), Authorized)
    ctx = first.context("payer", plan_id="p", evidence=make_evidence())
    third = make_action(amount="0.1", plan_id="p", digest=(3).to_bytes(32, "big"))
    await first.failed(third, ctx, "reverted")  # released: no longer spend, still a slot
    clock.advance(timedelta(minutes=30))

    second = _engine(store, clock)  # a fresh process's memory: only what the store says
    day, now = timedelta(days=1), clock.now()
    assert second.ledger.window_total("payer", "ETH", now, day) == Decimal("0.5")
    assert second.ledger.window_total_usd("payer", now, day) == Decimal("1500")
    assert isinstance(await _pay(second, "0.5", 4), Authorized)  # exactly up to 1 ETH
    denied = await _pay(second, "0.01", 5)
    assert isinstance(denied, Denied)
    assert denied.policy == "RateLimit"
    clock.advance(timedelta(minutes=31))  # the first three slots age out of the hour
    denied = await _pay(second, "0.01", 6)
    assert isinstance(denied, Denied)
    assert denied.policy == "SpendLimit"


async def test_a_newer_engine_fences_the_older_one(store: SqlEngine, clock: FakeClock) -> None:
    older = _engine(store, clock)
    assert isinstance(await _pay(older, "0.6", 1), Authorized)
    newer = _engine(store, clock)
    refused = await _pay(older, "0.3", 2)  # fits what the older one knows of
    assert isinstance(refused, Denied)
    assert "superseded" in refused.reason
    assert "one daemon per store" in refused.reason
    assert isinstance(await _pay(newer, "0.6", 3), Denied)  # it knows the older 0.6
    assert isinstance(await _pay(newer, "0.4", 4), Authorized)
    assert _spent(store) == Decimal("1")


async def test_evaluations_in_flight_when_a_newer_engine_claims_are_not_authorized(
    store_url: str, clock: FakeClock
) -> None:
    first_store, second_store = open_store(store_url), open_store(store_url)
    try:
        older = _engine(first_store, clock)
        in_flight = [asyncio.create_task(_pay(older, "0.3", n)) for n in range(1, 4)]
        await asyncio.sleep(0)  # each has reserved and waits for the group commit
        newer = _engine(second_store, clock)
        outcomes = await asyncio.gather(*in_flight)
        assert all(isinstance(outcome, Denied) for outcome in outcomes)
        assert _spent(second_store) == 0
        day = timedelta(days=1)
        assert newer.ledger.window_total("payer", "ETH", clock.now(), day) == 0
        assert isinstance(await _pay(newer, "1", 4), Authorized)
    finally:
        first_store.dispose()
        second_store.dispose()


def _spent(store: SqlEngine) -> Decimal:
    with store.connect() as connection:
        amounts = connection.execute(
            sa.select(spend_ledger.c.amount).where(spend_ledger.c.status != "released")
        )
        return sum((Decimal(amount) for (amount,) in amounts), Decimal(0))
