"""Crash test: a daemon process SIGKILLed at every journal boundary, five times each.

Each boundary gets its own agent, store and plans on the two shared anvils, and runs as
a sequence of daemon processes: each one is killed (``COVENANT_CRASH_AT``) the second
or second time it reaches the boundary, so every restart makes progress and dies
somewhere new; after five kills one more run finishes the job. Then
every plan must be fully claimed or fully refunded, no escrow locked twice, and every
balance must reconcile to the wei with the fees of the transactions that were mined.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from eth_account import Account
from web3.exceptions import TransactionNotFound

from chains._store import journal
from chains.atomic._crash import BOUNDARIES
from chains.atomic.store import PlanRecord, PlanStore
from config.store import open_store
from tests.atomic._env import EvmNode
from wallets.hd import generate_mnemonic

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
ZYGOTE = Path(__file__).resolve().parent / "_zygote.py"
ETH = 10**18
KILLS = 5
PLANS = 6
REFUND_BOUNDARIES = ("refund_intent", "refund_signed", "refund_final")


@dataclass
class Outcome:
    boundary: str
    kills: int
    final_code: int
    store: str
    plans: list[dict[str, Any]]
    agent: str
    log: str


def _plans(boundary: str) -> tuple[list[dict[str, Any]], int, int]:
    """Plans for `boundary`, the watcher interval, and the agent's funding on `base`."""
    refund = boundary in REFUND_BOUNDARIES
    plans: list[dict[str, Any]] = []
    for number in range(PLANS):
        first = {"chain": "arb", "recipient": Account.create().address, "amount": ETH // 100}
        second = {"chain": "base", "recipient": Account.create().address, "amount": ETH // 50}
        if refund:  # the base lock cannot be paid, so the plan refunds the arb lock
            first["deadline_in"], second["amount"] = 10, ETH
        plans.append(
            {"id": f"crash-{boundary.replace('_', '-')}-{number}", "payments": [first, second]}
        )
    return plans, (1 if refund else 25), (ETH // 1000 if refund else 10 * ETH)


def _run_boundary(boundary: str, nodes: dict[str, EvmNode], tmp: Path) -> Outcome:
    plans, watcher, base_funds = _plans(boundary)
    mnemonic = generate_mnemonic(12)
    from tests.atomic._env import make_wallet

    agent = make_wallet("crash", mnemonic).evm_address
    nodes["arb"].fund(agent, 10 * ETH)
    nodes["base"].fund(agent, base_funds)
    config: dict[str, Any] = {
        "store": f"sqlite:///{tmp / f'{boundary}.db'}",
        "agent": "crash",
        "mnemonic": mnemonic,
        "watcher": watcher,
        "plans": plans,
        "evm": {
            name: {"chain_id": node.chain_id, "url": node.url, "contract": node.contract}
            for name, node in nodes.items()
        },
    }
    config_file = tmp / f"{boundary}.json"
    config_file.write_text(json.dumps(config))
    log_path = tmp / f"{boundary}.log"
    # A restart re-enters an *_intent step (abandoned, sent anew) and `locked_all`, so
    # those kill on the second pass to make progress; the others on the first.
    nth = 2 if boundary.endswith("_intent") or boundary == "locked_all" else 1
    kills, code = 0, None
    zygote = subprocess.Popen(
        [sys.executable, str(ZYGOTE), str(log_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        while kills < KILLS:
            code = _daemon(zygote, config_file, f"{boundary}:{nth}")
            if code != -9:
                break
            kills += 1
        code = _daemon(zygote, config_file, None)
    finally:
        zygote.kill()
        zygote.wait()
    return Outcome(boundary, kills, code, config["store"], plans, agent, str(log_path))


def _daemon(zygote: subprocess.Popen[str], config: Path, crash: str | None) -> int:
    """Run one daemon process (forked by the zygote) to its exit or its SIGKILL."""
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    zygote.stdin.write(json.dumps({"config": str(config), "crash": crash}) + "\n")
    zygote.stdin.flush()
    return int(json.loads(zygote.stdout.readline())["code"])


def test_daemon_killed_at_every_journal_boundary(evm_nodes, tmp_path):
    assert len(BOUNDARIES) >= 8
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(lambda b: _run_boundary(b, evm_nodes, tmp_path), BOUNDARIES))
    for outcome in outcomes:
        assert outcome.kills == KILLS, (outcome.boundary, Path(outcome.log).read_text()[-3000:])
        assert outcome.final_code == 0, (outcome.boundary, Path(outcome.log).read_text()[-3000:])
        _check_outcome(outcome, evm_nodes)


def _check_outcome(outcome: Outcome, nodes: dict[str, EvmNode]) -> None:
    engine = open_store(outcome.store)
    try:
        plans = {plan.plan_id: plan for plan in PlanStore(engine).plans()}
        with engine.connect() as connection:
            sent = connection.execute(sa.select(journal.c.tx_id, journal.c.chain)).all()
    finally:
        engine.dispose()
    assert len(plans) == PLANS
    paid = {"arb": 0, "base": 0}
    for plan in plans.values():
        _check_plan(plan, outcome, nodes, paid)
    for name, node in nodes.items():
        fees = sum(_fee(node, tx_id) for tx_id, chain in sent if chain == name)
        funded = (
            ETH // 1000 if outcome.boundary in REFUND_BOUNDARIES and name == "base" else (10 * ETH)
        )
        assert node.balance(outcome.agent) == funded - paid[name] - fees, outcome.boundary


def _check_plan(
    plan: PlanRecord, outcome: Outcome, nodes: dict[str, EvmNode], paid: dict[str, int]
) -> None:
    where = (outcome.boundary, plan.plan_id, plan.state, plan.reason)
    if outcome.boundary in REFUND_BOUNDARIES:
        assert plan.state == "refunded", where
    assert plan.state in ("claimed", "refunded", "cancelled"), where
    for leg in plan.legs:
        locks = nodes[leg.chain].locked_events(leg.locator)
        assert locks <= 1, where  # never locked twice
        received = nodes[leg.chain].balance(leg.recipient)
        if plan.state == "claimed":
            assert plan.leg_states[leg.index] == "claimed", where
            assert received == leg.amount, where
            paid[leg.chain] += leg.amount
        else:
            assert plan.leg_states[leg.index] in ("refunded", "never"), where
            assert locks == (1 if plan.leg_states[leg.index] == "refunded" else 0), where
            assert received == 0, where


def _fee(node: EvmNode, tx_id: str) -> int:
    try:
        return node.fee(tx_id)
    except TransactionNotFound:
        return 0  # journaled but never mined (killed before broadcast, then abandoned)
