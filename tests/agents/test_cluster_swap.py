"""Cluster mode: two agents of one deployment held by two daemons swap with each other.

Two real daemons (`main.py run`) share a deployment on PostgreSQL. North gives ETH on
one anvil chain for south's ETH on another, all-or-nothing through HTLC escrow
(tests/agents/_cluster_swap.py). The lease hands north and south to different daemons
before either plans: the offer one daemon journals must reach the other through the
store (the board daemons share), the maker's daemon must hear the acceptance the other
journaled, and each must lock, check and claim on its own. The checker reads the chains
and the store: both sides claimed, each leg moved exactly once, and each side journaled
by the daemon that held its agent.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from agents.cluster.status import daemons as live_daemons
from chains.devnet import manager as devnet
from tests.agents import _cluster_harness as harness
from tests.agents import _cluster_swap as swap
from wallets.operator import open_wallets

pytestmark = [pytest.mark.anvil, pytest.mark.slow, harness.needs_anvil]

TTL = 2


def _holder_at(engine: Engine, agent: str, moment: datetime | None) -> str:
    """The daemon whose lease on `agent` was the latest claimed before `moment`."""
    assert moment is not None
    with engine.connect() as connection:
        owner: str = connection.execute(
            sa.text(
                "SELECT owner FROM cluster_lease_history WHERE agent = :agent "
                "AND claimed_at <= :moment ORDER BY epoch DESC LIMIT 1"
            ),
            {"agent": agent, "moment": moment},
        ).scalar_one()
    return owner


def test_two_agents_held_by_two_daemons_swap_through_the_store(
    pg: str, pg_store: Engine, tmp_path: Path
) -> None:
    # No paying agents; the swap's first tick comes 15 s after a daemon takes its agent,
    # time for the second daemon to come up and take one of the two before either plans.
    file = harness.deployment_file(
        tmp_path, pg, agents=0, ttl=f"{TTL}s", swap_every="15s", watcher_interval=3
    )
    deployment = harness.prepare(file)
    wallets = open_wallets(deployment, pg_store, harness.PASSPHRASE)
    logs = {name: tmp_path / f"{name}.log" for name in ("d1", "d2")}
    running = {}
    try:
        before = swap.balances(deployment, wallets)
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
        assert swap.plans(pg_store) == {}  # shared out before either agent planned
        harness.wait_until(lambda: swap.finished(pg_store), 90, "both sides to finish")
        after = swap.balances(deployment, wallets)
        journaled_by = {
            agent: _holder_at(pg_store, agent, plan.created_at)
            for agent, plan in swap.plans(pg_store).items()
        }
        still = harness.owners(pg_store)
        summary = swap.assert_settled(pg_store, deployment, before, after)
    finally:
        harness.stop_all(running)
        devnet.down(deployment)
    print(f"\ncluster swap: owners {shared_out}; {summary}")
    # Each side was journaled by the daemon holding its agent, and they were different.
    assert journaled_by == {agent: owner for agent, (owner, _) in shared_out.items()}
    assert shared_out["north"][0] != shared_out["south"][0]
    assert still == shared_out  # no hand-over in between: two daemons did it
