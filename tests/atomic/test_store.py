"""The coordinator's tables on SQLite, and on PostgreSQL when COVENANT_TEST_POSTGRES_URL
points at a server (.ci/run starts one)."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from chains.atomic import Leg, PlanRecord, PlanStore
from chains.atomic._tables import legs, plans, steps
from config.store import open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'atomic.db'}"
    if request.param == "postgresql":
        url = os.environ.get("COVENANT_TEST_POSTGRES_URL", "")
        if not url:
            pytest.skip("set COVENANT_TEST_POSTGRES_URL to run against PostgreSQL")
    engine = open_store(url)
    with engine.begin() as connection:  # a shared server keeps rows between runs
        for table in (steps, legs, plans):
            connection.execute(sa.delete(table))
    yield PlanStore(engine)
    engine.dispose()


def _plan(plan_id: str, amount: int) -> PlanRecord:
    leg = Leg(
        index=0,
        chain="arb",
        sender="0x" + "11" * 20,
        recipient="0x" + "22" * 20,
        amount=amount,
        deadline=1_900_000_000,
        locator="0x" + "ab" * 32,
    )
    return PlanRecord(
        plan_id=plan_id,
        agent="payer",
        kind="plan",
        state="locking",
        hashlock=bytes(range(32)),
        preimage_journaled=True,
        legs=(leg,),
    )


def test_plans_legs_and_steps_round_trip(store):
    store.create(_plan("pay-1", 2**200))  # amounts beyond 64 bits (ERC-20 base units)
    store.create(_plan("pay-2", 1))
    step = store.add_step("pay-1", 0, "lock")
    store.step_signed(step, "0xfeed")
    store.finish_step(step, "final")
    store.set_leg("pay-1", 0, state="locked")
    store.set_state("pay-2", "refunded", "a reason")
    plan = store.get("pay-1")
    assert plan.legs[0].amount == 2**200
    assert plan.hashlock == bytes(range(32))
    assert plan.leg_states == ("locked",)
    assert [(s.purpose, s.tx_id, s.status) for s in store.steps("pay-1")] == [
        ("lock", "0xfeed", "final")
    ]
    assert [p.plan_id for p in store.plans(open_only=True)] == ["pay-1"]
    assert store.get("pay-2").reason == "a reason"
