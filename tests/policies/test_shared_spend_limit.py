"""A deployment-wide SpendLimit holds across daemons (cluster mode, real PostgreSQL).

Two policy engines stand for two daemons: each has its own connection pool and its own
thread and event loop, and holds half of the agents, as cluster mode shares them out.
They evaluate payments at the same time against one limit of the whole deployment.
Neither engine's memory knows what the other reserved, so only the store can hold the
limit (`policies/shared_limits.py`); the test asserts it is never exceeded and that the
authorizations handed out add up to exactly the ledger's sum.

The negative control switches the store's judgement off (every reservation admitted):
the same race then authorizes far more than the limit, so the check above can fail.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine as SqlEngine

from config.store import open_store
from policies import Authorized, Denied, Outcome, PolicyEngine
from policies._tables import spend_ledger
from policies.shared_limits import SharedLimits
from policies.testing import make_action, make_deployment, make_evidence

AGENTS = ("a1", "a2", "a3", "a4")
AMOUNT = Decimal("0.001")  # ETH, $3 at the kit's $3000
TRIES = 15  # per agent: 60 payments of 0.001 ETH against a limit of 0.01
LIMITS: dict[str, dict[str, Any]] = {
    "asset": {"per_day": {"ETH": "0.01"}},
    "usd": {"per_day_usd": "30"},
}


@pytest.fixture
def stores(pg: str) -> Iterator[list[SqlEngine]]:
    engines = [open_store(pg), open_store(pg)]  # one pool per daemon
    yield engines
    for engine in engines:
        engine.dispose()


def _daemon(store: SqlEngine, limit: dict[str, Any]) -> PolicyEngine:
    policies = [
        {"SpendLimit": {"per_transaction": {"ETH": "1"}}},
        {"SpendLimit": {"scope": "deployment", **limit}},
    ]
    # lease_epochs is what makes an engine a cluster daemon's: epoch 1 for every agent.
    return PolicyEngine(
        make_deployment(policies, agents=AGENTS), store, lease_epochs=lambda _agent: 1
    )


async def _pay_all(engine: PolicyEngine, agents: tuple[str, ...]) -> list[Outcome]:
    """TRIES rounds of one payment per agent, each round's evaluations at once (one
    group commit), so the two daemons' commits interleave."""

    async def pay(agent: str) -> Outcome:
        action = make_action(agent=agent, amount=AMOUNT, plan_id="p", digest=os.urandom(32))
        ctx = engine.context(agent, plan_id="p", evidence=make_evidence())
        return await engine.evaluate(action, ctx)

    outcomes: list[Outcome] = []
    for _ in range(TRIES):
        outcomes += await asyncio.gather(*(pay(agent) for agent in agents))
    await engine.drain()
    return outcomes


def _race(stores: list[SqlEngine], limit: dict[str, Any]) -> list[Outcome]:
    """Both daemons pay for their own agents at once; every outcome of both."""
    engines = [_daemon(store, limit) for store in stores]
    shares = [AGENTS[:2], AGENTS[2:]]
    results: list[list[Outcome]] = [[], []]
    start = threading.Barrier(2)

    def run(index: int) -> None:
        start.wait()
        results[index] = asyncio.run(_pay_all(engines[index], shares[index]))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results[0] + results[1]


def _ledger_total(store: SqlEngine) -> Decimal:
    with store.connect() as connection:
        amounts = connection.execute(
            sa.select(spend_ledger.c.amount).where(spend_ledger.c.status != "released")
        ).scalars()
        return sum((Decimal(amount) for amount in amounts), Decimal(0))


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_two_daemons_never_spend_past_a_deployment_limit(
    stores: list[SqlEngine], kind: str
) -> None:
    outcomes = _race(stores, LIMITS[kind])
    authorized = [o for o in outcomes if isinstance(o, Authorized)]
    denied = [o for o in outcomes if isinstance(o, Denied)]
    assert len(authorized) + len(denied) == len(AGENTS) * TRIES
    spent = AMOUNT * len(authorized)
    print(f"\n{kind} limit: {len(authorized)} authorized, {len(denied)} denied")
    assert spent == Decimal("0.01")  # exactly up to the limit, not a unit past it
    assert _ledger_total(stores[0]) == spent
    # Both daemons spent (each was held to the whole deployment's figure, not its own).
    agents = {o.authorization.agent for o in authorized}
    assert agents & {"a1", "a2"}
    assert agents & {"a3", "a4"}
    assert {o.policy for o in denied} == {"SpendLimit"}
    assert all("deployment's spending (every daemon's agents)" in o.reason for o in denied)


def test_negative_control_without_the_stores_judgement_the_limit_is_passed(
    stores: list[SqlEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    def admit_all(_self: SharedLimits, _connection: Any, commits: Any) -> list[None]:
        return [None] * len(commits)

    monkeypatch.setattr(SharedLimits, "admit", admit_all)
    outcomes = _race(stores, LIMITS["asset"])
    spent = AMOUNT * sum(isinstance(o, Authorized) for o in outcomes)
    assert spent > Decimal("0.01")
    assert _ledger_total(stores[0]) == spent
