"""Two operators' daemons, where north's is hostile: the real daemon with one cheat below
its own policy gate (tests/a2a/_hostile.py). North's agent makes the swap offer; south's,
honest, takes it. North then locks less than agreed, to the wrong recipient, under
another hashlock or with another deadline than it signed, or never locks at all; or it
signs an offer whose deadlines are too short for south's margins or too long for its
max_lock. Each time south must end whole, having locked nothing, with the reason in its
store and its audit log.

The negative control of every case is tests/a2a/test_two_operators.py: the same two
daemons without the cheat, which swap.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest

from chains.devnet import manager as devnet
from chains.families.evm._anvil import anvil_path
from tests.a2a._concurrently import concurrently
from tests.a2a._two_operators import (
    balances,
    start,
    stop,
    two_operators,
    wait_for,
)

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

AT_LOCK = {
    # cheat: what south's check of north's lock on chain says
    "amount": "amount is",
    "recipient": "recipient is",
    "hashlock": "hashlock is",
    "lock-deadline": "deadline is",
}
AT_OFFER = {
    # cheat: what south's check of the signed offer says, before it journals anything
    "short-deadline": "locking and being claimed needs",
    "long-deadline": "more than max_lock",
}


@pytest.mark.timeout(900)
def test_a_hostile_maker_never_costs_the_honest_taker_anything(tmp_path: Path) -> None:
    if anvil_path() is None:
        pytest.skip("anvil not installed: run `npm ci` (scripts/setup.sh does)")
    # The longest case (it ends at south's deadline) first, beside the quick ones.
    reasons = {"never-lock": "the maker did not lock in time", **AT_LOCK, **AT_OFFER}
    cases = {
        cheat: partial(_case, tmp_path / cheat, block, cheat, reason)
        for block, (cheat, reason) in enumerate(reasons.items())
    }
    concurrently(cases, workers=4)


def _case(tmp_path: Path, block: int, cheat: str, reason: str) -> None:
    tmp_path.mkdir()
    # North offers on its 3rd tick, south plans to take it on its 5th. The slack keeps
    # the honest terms inside south's margins however slowly a loaded machine runs them
    # (at 5 s, seven cases side by side once left an honest offer 1 s short).
    north, south, urls = two_operators(tmp_path, idle=(2, 4), block=block, slack=30)
    daemons = []
    try:
        before = asyncio.run(balances(south, urls))
        daemons.append(start(north, tmp_path / "north.log", cheat=cheat))
        wait_for(north.serving, 60, "north's agent card")
        daemons.append(start(south, tmp_path / "south.log"))
        if cheat in AT_OFFER:
            wait_for(lambda: "swap not started" in south.audit(), 90, "south's refusal")
        else:
            wait_for(
                lambda: bool(south.plans()) and all(p.terminal for p in south.plans()),
                180,
                "south's side of the swap to end",
            )
            # The plan's end reaches the agent's next observation, then its audit entry.
            wait_for(lambda: reason in south.audit(), 30, "the reason in south's audit log")
        after = asyncio.run(balances(south, urls))
    finally:
        for process in daemons:
            stop(process)
        devnet.down(north.deployment)
    log = (tmp_path / "south.log").read_text()
    assert "Traceback" not in log
    assert after == before  # south sent nothing: not a lock, not a fee
    if cheat in AT_OFFER:
        refusal = next(line for line in south.audit().splitlines() if "swap not started" in line)
        assert reason in refusal, refusal
        assert south.plans() == []  # refused before journaling: it never accepted
        return
    (plan,) = south.plans()
    assert plan.kind == "taker"
    assert plan.state == "cancelled", (plan.state, plan.reason)
    assert reason in (plan.reason or ""), plan.reason
    assert plan.leg_states[1] == "planned"  # south's own leg: never locked
