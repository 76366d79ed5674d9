"""Cluster mode: two agents of one deployment held by two daemons swap with each other.

Two real daemons (`main.py run`) share a deployment on PostgreSQL. North gives ETH on
one anvil chain for south's ETH on another, all-or-nothing through HTLC escrow. The
lease hands north and south to different daemons before either plans: the offer one
daemon journals must reach the other through the store (the board two daemons share),
the maker's daemon must hear the acceptance the other journaled, and each must lock,
check and claim on its own. The checker reads the chains and the store: both plans
claimed, each leg moved exactly once, and each plan journaled by the daemon that held
its agent.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine
from web3 import Web3

from agents.cluster.status import daemons as live_daemons
from chains.atomic.store import PlanStore
from chains.connect import resolve_url
from chains.devnet import manager as devnet
from tests.agents import _cluster_harness as harness
from wallets.operator import open_wallets

pytestmark = [pytest.mark.anvil, pytest.mark.slow, harness.needs_anvil]

TTL = 2
NORTH_GIVES = ("arb", Decimal("0.01"))
SOUTH_GIVES = ("base", Decimal("0.02"))


def _swap(give: tuple[str, Decimal], take: tuple[str, Decimal], with_: str) -> dict[str, Any]:
    def leg(side: tuple[str, Decimal]) -> dict[str, str]:
        return {"chain": side[0], "asset": "ETH", "amount": str(side[1])}

    return {
        "confidence": "0.9",
        "actions": [{"kind": "swap", "counterparty": with_, "give": leg(give), "take": leg(take)}],
    }


def _agent(name: str, other: str, planner: str) -> dict[str, Any]:
    return {
        # The first tick comes a schedule period after the start: time for the second
        # daemon to come up and take one of the two agents before either plans.
        "name": name,
        "schedule": {"every": "15s"},
        "mandate": f"Swap ETH with {other}.",
        "planner": planner,
        "chains": ["arb", "base"],
        "counterparties": [other],
        "policies": [
            {"Allowlist": {"recipients": [other]}},
            {"SpendLimit": {"per_transaction": {"ETH": "0.05"}}},
        ],
    }


def _deployment_file(directory: Path, url: str) -> Path:
    chains = [
        {
            "name": name,
            "family": "evm",
            "chain_id": chain_id,
            "rpc": "local",
            "finality": {"confirmations": 0},
            "local": {"fund_agents": "1"},
            "htlc": "local",
        }
        for name, chain_id in (("arb", 31337), ("base", 31338))
    ]
    data = {
        "name": "cluster-swap",
        "data_dir": str(directory / "data"),
        "operator": {"name": "op"},
        "store": {"url": url},
        "cluster": {"lease_ttl": f"{TTL}s"},
        "chains": chains,
        "atomic": {"watcher_interval": 3, "slack": 10, "evm": {"inclusion": 5, "finality": 2}},
        "assets": [
            {"symbol": "ETH", "chain": name, "native": True, "decimals": 18}
            for name in ("arb", "base")
        ],
        "address_book": [
            {"name": "north", "agent": "north"},
            {"name": "south", "agent": "south"},
        ],
        "planners": [
            {
                "name": "north-plan",
                "kind": "scripted",
                "repeat": False,
                "plans": [_swap(NORTH_GIVES, SOUTH_GIVES, "south")],
            },
            {
                "name": "south-plan",
                "kind": "scripted",
                "repeat": False,
                "plans": [_swap(SOUTH_GIVES, NORTH_GIVES, "north")],
            },
        ],
        "agents": [_agent("north", "south", "north-plan"), _agent("south", "north", "south-plan")],
    }
    file = directory / "cluster-swap.yaml"
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    return file


def _holder_at(engine: Engine, agent: str, moment: datetime) -> str:
    """The daemon whose lease on `agent` was the latest claimed before `moment`."""
    with engine.connect() as connection:
        owner: str = connection.execute(
            sa.text(
                "SELECT owner FROM cluster_lease_history WHERE agent = :agent "
                "AND claimed_at <= :moment ORDER BY epoch DESC LIMIT 1"
            ),
            {"agent": agent, "moment": moment},
        ).scalar_one()
    return owner


def _created_at(engine: Engine, agent: str) -> list[datetime]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.text("SELECT created_at FROM atomic_plans WHERE agent = :agent"),
                {"agent": agent},
            ).scalars()
        )


def _balances(deployment: Any, addresses: dict[str, str]) -> dict[tuple[str, int], int]:
    return {
        (name, chain): asyncio.run(harness.balance(deployment, address, chain=chain))
        for name, address in addresses.items()
        for chain in (0, 1)
    }


def _fees(deployment: Any, plans: PlanStore, agent: str, plan_id: str) -> dict[int, int]:
    """Wei `agent` paid per chain (by index) for its escrow transactions, from receipts."""
    fees = {0: 0, 1: 0}
    names = [chain.name for chain in deployment.chains]
    scoped = plans.scoped(agent)
    for step in scoped.steps(plan_id):
        if step.tx_id is None:
            continue
        chain = names.index(scoped.get(plan_id).leg(step.idx).chain)
        url = resolve_url(deployment.chains[chain], deployment.data_dir)
        receipt = Web3(Web3.HTTPProvider(url)).eth.get_transaction_receipt(step.tx_id)  # type: ignore[arg-type]
        fees[chain] += int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    return fees


def test_two_agents_held_by_two_daemons_swap_through_the_store(
    pg: str, pg_store: Engine, tmp_path: Path
) -> None:
    file = _deployment_file(tmp_path, pg)
    deployment = harness.prepare(file)
    wallets = open_wallets(deployment, pg_store, harness.PASSPHRASE)
    addresses = {name: wallets.agent(name).evm_address for name in ("north", "south")}
    logs = {name: tmp_path / f"{name}.log" for name in ("d1", "d2")}
    running = {}
    try:
        before = _balances(deployment, addresses)
        running["d1"] = harness.start_daemon(file, "d1", logs["d1"])
        harness.wait_until(
            lambda: {owner for owner, _ in harness.owners(pg_store).values()} == {"d1"},
            60,
            "d1 to hold both agents",
        )
        running["d2"] = harness.start_daemon(file, "d2", logs["d2"])
        harness.wait_until(
            lambda: {d.daemon for d in live_daemons(pg_store)} == {"d1", "d2"}, 60, "d2 to be live"
        )
        harness.wait_until(
            lambda: {owner for owner, _ in harness.owners(pg_store).values()} == {"d1", "d2"},
            8 * TTL,
            "the agents to be shared out",
        )
        shared_out = harness.owners(pg_store)
        plans = PlanStore(pg_store)
        assert plans.plans() == []  # shared out before either agent planned
        harness.wait_until(
            lambda: len(plans.plans()) == 2 and all(plan.terminal for plan in plans.plans()),
            90,
            "both sides of the swap to finish",
        )
        after = _balances(deployment, addresses)
        finished = {plan.agent: plan for plan in plans.plans()}
        steps = {
            agent: [(s.idx, s.purpose, s.status) for s in plans.scoped(agent).steps(plan.plan_id)]
            for agent, plan in finished.items()
        }
        journaled_by = {
            agent: {_holder_at(pg_store, agent, moment) for moment in _created_at(pg_store, agent)}
            for agent in ("north", "south")
        }
        still = harness.owners(pg_store)
        fees = {a: _fees(deployment, plans, a, plan.plan_id) for a, plan in finished.items()}
    finally:
        harness.stop_all(running)
        devnet.down(deployment)
    print(
        f"\ncluster swap: owners {shared_out}; plans "
        f"{ {agent: (plan.kind, plan.state) for agent, plan in finished.items()} }; steps {steps}"
    )
    assert {plan.state for plan in finished.values()} == {"claimed"}, finished
    assert {plan.kind for plan in finished.values()} == {"maker", "taker"}
    assert len({plan.plan_id for plan in finished.values()}) == 1  # one swap, two sides
    # Each side was journaled by the daemon holding its agent, and they were different.
    assert journaled_by["north"] == {shared_out["north"][0]}
    assert journaled_by["south"] == {shared_out["south"][0]}
    assert shared_out["north"][0] != shared_out["south"][0]
    assert still == shared_out  # no hand-over in between: two daemons did it
    for agent in ("north", "south"):
        ours = 0 if finished[agent].kind == "maker" else 1
        assert [s for s in steps[agent] if s[1] == "lock"] == [(ours, "lock", "final")]
        assert [s for s in steps[agent] if s[1] == "claim"] == [(1 - ours, "claim", "final")]
    # Each leg moved exactly once, to the wei: north's ETH on arb to south, south's on
    # base to north, and each side paid nothing else than its own transactions' fees.
    north, south = int(NORTH_GIVES[1] * harness.WEI), int(SOUTH_GIVES[1] * harness.WEI)
    moved = {key: after[key] - before[key] for key in before}
    assert moved == {
        ("north", 0): -north - fees["north"][0],
        ("north", 1): south - fees["north"][1],
        ("south", 0): north - fees["south"][0],
        ("south", 1): -south - fees["south"][1],
    }
