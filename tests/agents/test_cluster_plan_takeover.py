"""Cluster mode: an all-or-nothing payment in flight survives its daemon's death.

Two real daemons (`main.py run`) share a deployment on PostgreSQL; one agent pays acme
on two anvil chains at once through hash-time-locked escrow (`pay_many`). The daemon
that holds the agent is killed (SIGKILL, by the crash injection of
`chains/atomic/_crash.py`) the moment both locks are final and before either claim: the
funds sit in escrow on both chains and only the plan's journal says what comes next.
The other daemon, alive all along, must win the lease, rebuild the plan from the store
and the chains, and claim both legs before their deadlines: acme is paid exactly once on
each chain, nothing is locked twice, and nothing new is planned.

The checker reads the chains and the store, not what the daemons print.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine

from agents.cluster.status import daemons as live_daemons
from chains.atomic.store import PlanStore
from chains.devnet import manager as devnet
from tests.agents import _cluster_harness as harness

pytestmark = [pytest.mark.anvil, pytest.mark.slow, harness.needs_anvil]

TTL = 2  # hands over within about 2.7 s, inside the watcher interval the margins allow
LEGS = (("arb", Decimal("0.01")), ("base", Decimal("0.02")))


def _deployment_file(directory: Path, url: str) -> Path:
    chains: list[dict[str, Any]] = [
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
    plan = {
        "confidence": "0.9",
        "actions": [
            {
                "kind": "pay_many",
                "legs": [
                    {"chain": chain, "asset": "ETH", "amount": str(amount), "counterparty": "acme"}
                    for chain, amount in LEGS
                ],
            }
        ],
    }
    data = {
        "name": "takeover",
        "data_dir": str(directory / "data"),
        "operator": {"name": "op"},
        "store": {"url": url},
        "cluster": {"lease_ttl": f"{TTL}s"},
        "chains": chains,
        "atomic": {"watcher_interval": 3, "slack": 10, "evm": {"inclusion": 5, "finality": 2}},
        "assets": [
            {"symbol": "ETH", "chain": name, "native": True, "decimals": 18} for name, _ in LEGS
        ],
        "address_book": [{"name": "acme", "addresses": {name: harness.ACME for name, _ in LEGS}}],
        "planners": [{"name": "pay", "kind": "scripted", "plans": [plan], "repeat": False}],
        "agents": [
            {
                # The first tick comes a schedule period after the start, which leaves
                # the second daemon time to come up before the plan is made.
                "name": "payer",
                "schedule": {"every": "12s"},
                "mandate": "Pay acme on both chains, all or nothing.",
                "planner": "pay",
                "chains": [name for name, _ in LEGS],
                "counterparties": ["acme"],
                "policies": [
                    {"Allowlist": {"recipients": ["acme"]}},
                    {"SpendLimit": {"per_transaction": {"ETH": "0.05"}}},
                ],
            }
        ],
    }
    file = directory / "takeover.yaml"
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    return file


def _balances(deployment: Any) -> list[int]:
    return [
        asyncio.run(harness.balance(deployment, harness.ACME, chain=index))
        for index in range(len(LEGS))
    ]


def test_a_payment_locked_on_two_chains_is_claimed_by_the_daemon_that_takes_over(
    pg: str, pg_store: Engine, tmp_path: Path
) -> None:
    file = _deployment_file(tmp_path, pg)
    deployment = harness.prepare(file)
    logs = {name: tmp_path / f"{name}.log" for name in ("d1", "d2")}
    running = {}
    try:
        before = _balances(deployment)
        running["d1"] = harness.start_daemon(
            file, "d1", logs["d1"], extra_env={"COVENANT_CRASH_AT": "locked_all"}
        )
        harness.wait_until(
            lambda: harness.owners(pg_store).get("payer", (None, 0))[0] == "d1",
            60,
            "d1 to hold payer",
        )
        epoch_before = harness.owners(pg_store)["payer"][1]
        running["d2"] = harness.start_daemon(file, "d2", logs["d2"])
        harness.wait_until(
            lambda: {d.daemon for d in live_daemons(pg_store)} == {"d1", "d2"}, 60, "d2 to be live"
        )
        assert PlanStore(pg_store).plans() == []  # d2 came up before the plan was made
        running["d1"].wait(timeout=90)  # dies at locked_all
        died = harness.db_now(pg_store)
        assert "COVENANT_CRASH_AT: killed at locked_all" in logs["d1"].read_text()
        locked = PlanStore(pg_store).plans(agent="payer")
        assert [plan.state for plan in locked] != ["claimed"]  # killed before any claim

        harness.wait_until(
            lambda: harness.owners(pg_store).get("payer", (None, 0))[0] == "d2",
            8 * TTL,
            "take-over",
        )
        takeover = (
            harness.claimed_after(pg_store, {"payer"}, died)["payer"] - died
        ).total_seconds()
        started = time.monotonic()
        harness.wait_until(
            lambda: all(plan.terminal for plan in PlanStore(pg_store).plans(agent="payer")),
            60,
            "the plan to finish",
        )
        settled = time.monotonic() - started
        time.sleep(2 * TTL)  # room for anything repeated to show up
        after = _balances(deployment)
        plans = PlanStore(pg_store).plans(agent="payer")
        steps = [
            (step.idx, step.purpose, step.status)
            for plan in plans
            for step in PlanStore(pg_store).steps(plan.plan_id)
        ]
        epoch_after = harness.owners(pg_store)["payer"][1]
    finally:
        harness.stop_all(running)
        devnet.down(deployment)
    print(
        f"\nplan take-over: lease won {takeover:.2f}s after the SIGKILL (TTL {TTL}s), plan "
        f"finished {settled:.2f}s later; epochs {epoch_before} -> {epoch_after}; steps {steps}"
    )
    assert len(plans) == 1  # nothing new was planned by the daemon that took over
    assert plans[0].state == "claimed", plans[0].reason
    assert epoch_after > epoch_before
    # Acme was paid exactly once on each chain: no lock repeated, no leg lost.
    paid = [later - earlier for earlier, later in zip(before, after, strict=True)]
    assert paid == [int(amount * harness.WEI) for _, amount in LEGS]
    for index in range(len(LEGS)):
        assert [s for s in steps if s[0] == index and s[1] == "lock"] == [(index, "lock", "final")]
        assert [s for s in steps if s[0] == index and s[1] == "claim"] == [
            (index, "claim", "final")
        ]
    assert takeover < 4 * TTL
