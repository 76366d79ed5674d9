"""Crash anywhere: the daemon SIGKILLed at every durable write of one swap and at random
instants of swaps and payments on both chain families loses nothing.

The harness (tests/atomic/_crash_harness.py) runs each scenario as a sequence of daemon
processes on the shared chains (two anvils, the LiteSVM JSON-RPC server): one killed
where the scenario says, then clean restarts until it exits 0. Judged from the chains:
every plan fully claimed or fully refunded, no escrow left locked, no nonce gap or stuck
transaction on anvil, and every agent's balance equal to start - fees - what it gave +
what it got, to the wei and the lamport. `scripts/crash_anywhere.py` runs the same
campaign at full size (200 random kills); this is the sample CI runs.

Set COVENANT_CRASH_SEED to replay a seed; the seed is in every failure message.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.atomic._crash_harness import (
    ETH,
    SOL,
    Zygote,
    campaign,
    judge,
    make_scenario,
    run_scenario,
)
from tests.atomic._crash_judge import ChainView, rpc

pytestmark = [pytest.mark.anvil, pytest.mark.slow, pytest.mark.timeout(900)]
SEED = int(os.environ.get("COVENANT_CRASH_SEED") or time.time_ns() % 1_000_000)
RANDOM_KILLS = 20


def test_killed_at_every_write_and_at_random_instants_loses_nothing(
    evm_nodes, solana_node, tmp_path
):
    figures = campaign(
        evm_nodes,
        solana_node,
        tmp_path / "scenarios",
        kills=RANDOM_KILLS,
        seed=SEED,
        every_write=True,
    )
    summary = figures.summary()
    print(summary)  # the figures, with -s
    where = f"seed {SEED}: {summary}\n" + "\n".join(figures.failures())
    assert not figures.failures(), where
    assert summary["plans_open"] == summary["plans_broken"] == 0, where
    # The count covers every kind of durable write a swap makes, nonce reservations too.
    writes = (tmp_path / "scenarios" / "cal-swap-arb-sol" / "writes.log").read_text()
    for table in ("chain_nonce", "chain_tx_journal", "atomic_steps", "atomic_plans"):
        assert f"INSERT {table}" in writes, where
    assert figures.writes >= 30, where
    assert summary["write_kills"] == 2 * figures.writes, where  # each index, before and after
    assert summary["random_kills"] >= RANDOM_KILLS, where
    assert summary["lost_wei"] == summary["lost_lamports"] == 0, where


def test_the_judge_sees_a_lost_swap_side_an_open_plan_a_wei_a_lamport_and_a_nonce_gap(
    evm_nodes, solana_node, tmp_path
):
    """Negative controls: each check of the judge fails when its fault is really there."""
    view = ChainView(evm_nodes, solana_node)
    zygote = Zygote(tmp_path / "zygote.log")
    try:
        scenario = make_scenario("swap-arb-sol", "control-swap", evm_nodes, solana_node, tmp_path)
        # Killed right after the maker's claim became final, and never restarted: the
        # maker has the taker's SOL, the taker never claims the maker's ETH.
        killed = [zygote.run(scenario, crash="claim_final:1")]
        assert killed[0].code == -9
        verdict = judge(scenario, killed, view)
        assert not verdict.ok
        assert verdict.plans == {"control-swap": "open"}
        assert verdict.lost == {"wei": 0, "lamports": SOL // 20}  # the taker's side
        assert verdict.locked == {"wei": ETH // 200, "lamports": 0}
        # Restarted, it finishes and the same judge finds nothing wrong.
        runs = killed + run_scenario(scenario, zygote, [])
        verdict = judge(scenario, runs, view)
        assert verdict.ok, verdict.describe()
    finally:
        zygote.close()
    taker_evm = next(a for c, a in scenario.start if c == "arb" and a in scenario.agents)
    arb = evm_nodes["arb"]
    arb.fund(taker_evm, view.balance("arb", taker_evm) - 1)  # one wei gone
    verdict = judge(scenario, runs, view)
    assert verdict.lost == {"wei": 1, "lamports": 0}
    assert verdict.discrepancies == [f"arb {taker_evm}: balance off by -1 wei"]
    arb.fund(taker_evm, view.balance("arb", taker_evm) + 1)
    maker_sol = next(a for c, a in scenario.start if c == "sol" and a in scenario.agents)
    solana_node.fund(maker_sol, 1)  # one lamport from nowhere
    verdict = judge(scenario, runs, view)
    assert verdict.discrepancies == [f"sol {maker_sol}: balance off by +1 lamports"]
    start = {**scenario.start, ("sol", maker_sol): scenario.start[("sol", maker_sol)] + 2}
    verdict = judge(scenario, runs, view, start=start)  # so it is now one lamport short
    assert verdict.lost == {"wei": 0, "lamports": 1}
    gap = _leave_a_nonce_gap(arb.url, taker_evm)
    problems = judge(scenario, runs, view).nonce_problems
    assert problems == [f"arb {taker_evm}: txpool holds queued nonce {gap}"]


def _leave_a_nonce_gap(url: str, address: str) -> int:
    """Send a transaction from `address` one nonce ahead of the chain: anvil queues it
    behind the missing nonce (as a crashed build's skipped nonce would leave it)."""
    latest = int(rpc(url, "eth_getTransactionCount", [address, "latest"]), 16)
    rpc(url, "anvil_impersonateAccount", [address])
    tx = {"from": address, "to": address, "value": "0x0", "nonce": hex(latest + 1), "gas": "0x5208"}
    rpc(url, "eth_sendTransaction", [tx])
    rpc(url, "anvil_stopImpersonatingAccount", [address])
    return latest + 1
