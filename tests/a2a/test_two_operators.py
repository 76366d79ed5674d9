"""Two operators' daemons swap with each other over A2A, on the local chains: two
processes, two keystores, two stores, two data dirs. Each learns the other's addresses
only from its verified card, checks the other's authority credential (issued by an
operator it trusts, fetched revocation list) and its lock on chain, and ends claimed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chains.devnet import manager as devnet
from chains.families.evm._anvil import anvil_path
from tests.a2a._two_operators import ETH, SOL, balances, start, stop, two_operators, wait_for

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

WEI, LAMPORTS = 10**18, 10**9


@pytest.fixture
def sides(tmp_path: Path):
    if anvil_path() is None:
        pytest.skip("anvil not installed: run `npm ci` (scripts/setup.sh does)")
    north, south, urls = two_operators(tmp_path)
    try:
        yield north, south, urls
    finally:
        devnet.down(north.deployment)


def _states(side) -> set[str]:
    return {plan.state for plan in side.plans()}


def test_two_daemons_of_two_operators_swap_eth_for_sol(sides, tmp_path: Path) -> None:
    north, south, urls = sides
    before = {side.name: asyncio.run(balances(side, urls)) for side in (north, south)}
    daemons = {}
    try:
        # North's agent offers as soon as it ticks, before south is up: its offer is
        # sent again until south's endpoint takes it. Whichever agent ticks first
        # offers; two crossed offers end as one swap (the greater DID takes the other's).
        daemons["north"] = start(north, tmp_path / "north.log")
        wait_for(north.serving, 60, "north's agent card")
        daemons["south"] = start(south, tmp_path / "south.log")
        wait_for(
            lambda: _states(north) == {"claimed"} and _states(south) == {"claimed"},
            120,
            "both sides' plans to end claimed",
        )
    finally:
        for process in daemons.values():
            stop(process)
        logs = {name: (tmp_path / f"{name}.log").read_text() for name in daemons}
    after = {side.name: asyncio.run(balances(side, urls)) for side in (north, south)}
    change = {
        name: {chain: after[name][chain] - before[name][chain] for chain in after[name]}
        for name in after
    }
    (plan_north,), (plan_south,) = north.plans(), south.plans()
    assert plan_north.plan_id == plan_south.plan_id
    assert {plan_north.kind, plan_south.kind} == {"maker", "taker"}
    # Each got what it took, less at most a little for fees; each gave what it gave.
    fee_eth, fee_sol = WEI // 100, LAMPORTS // 100
    eth, sol = int(ETH * WEI), int(SOL * LAMPORTS)
    assert -eth - fee_eth < change["north"]["arb"] < -eth, (change, logs)
    assert sol - fee_sol < change["north"]["sol"] <= sol + fee_sol, change
    assert eth - fee_eth < change["south"]["arb"] <= eth, change
    assert -sol - fee_sol < change["south"]["sol"] < -sol + fee_sol, change
    for log in logs.values():
        assert "Traceback" not in log, log[-3000:]
