"""Two operators' daemons, where north's agent cannot show the authority for its offer:
its operator is not one south trusts, its credential has expired, its operator revoked
it (south fetches the revocation list from north's endpoint), or its limits do not cover
the leg it offers to lock. South's agent plans to take the offer and is refused, the
reason in its audit log; neither side locks anything, so no balance moves.

The negative control of every case is tests/a2a/test_two_operators.py, the same two
daemons with a valid credential, which swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import httpx
import pytest

from agents.app.two_operators import (
    PASSPHRASE,
    ROOT,
    Side,
    balances,
    issue,
    start,
    stop,
    two_operators,
    wait_for,
    write,
)
from chains.devnet import manager as devnet
from chains.families.evm._anvil import anvil_path
from tests.a2a._concurrently import concurrently

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


def _untrusted(north: Side, south: Side, urls: dict[str, str]) -> None:
    # South trusts only its own operator.
    write(south, north, urls, idle=8, trusted=[south.operator_did])


def _expiring(north: Side, south: Side, urls: dict[str, str]) -> None:
    # Valid when north starts (a daemon refuses to present an expired credential of its
    # own), expired by the time south's agent plans, at least 24 s after north is up.
    issue(north, valid_for=timedelta(seconds=15))


def _revoke(north: Side, south: Side, urls: dict[str, str]) -> None:
    # Once north is up (a daemon refuses to start with a revoked credential of its own):
    # its endpoint serves the list as it is on disk, so south sees the revocation.
    revoke = [sys.executable, "main.py", "did", "revoke", str(north.file)]
    credential = str(north.directory / "credential.jwt")
    env = {**os.environ, "COVENANT_PASSPHRASE": PASSPHRASE}
    subprocess.run([*revoke, credential], cwd=ROOT, env=env, check=True, capture_output=True)


def _not_covered(north: Side, south: Side, urls: dict[str, str]) -> None:
    issue(north, per_transaction={"ETH": Decimal("0.5"), "SOL": Decimal(20)})


Spoil = Callable[[Side, Side, dict[str, str]], None]


def _nothing(north: Side, south: Side, urls: dict[str, str]) -> None:
    pass


CASES: dict[str, tuple[Spoil, Spoil, str]] = {
    # (before north starts, once north is up, what south's refusal says)
    "untrusted-operator": (_untrusted, _nothing, "which this caller does not trust"),
    "expired-credential": (_expiring, _nothing, "expired"),
    "revoked-credential": (_nothing, _revoke, "revoked"),
    "limits-do-not-cover-the-leg": (
        _not_covered,
        _nothing,
        "over the credential's per-transaction limit",
    ),
}


def _serving(side: Side) -> bool:
    url = f"http://127.0.0.1:{side.port}/agents/{side.agent}/.well-known/agent-card.json"
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2).status_code == 200
    return False


@pytest.mark.timeout(600)
def test_an_offer_without_authority_is_refused_and_nothing_locks(tmp_path: Path) -> None:
    if anvil_path() is None:
        pytest.skip("anvil not installed: run `npm ci` (scripts/setup.sh does)")
    cases = {name: partial(_case, tmp_path / name, *spoils) for name, spoils in CASES.items()}
    concurrently(cases, workers=len(cases))


def _case(tmp_path: Path, before_start: Spoil, once_up: Spoil, reason: str) -> None:
    tmp_path.mkdir()
    # North offers on its 3rd tick; south plans to take it on its 9th (refused whether
    # north's offer is still live or has expired: south checks north's authority first).
    north, south, urls = two_operators(tmp_path, idle=(2, 8))
    daemons = []
    try:
        before_start(north, south, urls)
        before = {side.name: asyncio.run(balances(side, urls)) for side in (north, south)}
        daemons.append(start(north, tmp_path / "north.log"))
        wait_for(lambda: _serving(north), 60, "north's agent card")
        once_up(north, south, urls)
        daemons.append(start(south, tmp_path / "south.log"))
        wait_for(lambda: "swap not started" in south.audit(), 90, "south's refusal")
        after = {side.name: asyncio.run(balances(side, urls)) for side in (north, south)}
    finally:
        for process in daemons:
            stop(process)
        devnet.down(north.deployment)
    refusal = next(line for line in south.audit().splitlines() if "swap not started" in line)
    assert reason in refusal, refusal
    assert south.plans() == []  # south journaled nothing: it never accepted
    # North's offer (if its agent made one while south was up) waits for an answer until
    # it expires; it never locks.
    assert {plan.state for plan in north.plans()} <= {"offered", "cancelled"}
    assert after == before
    assert "Traceback" not in (tmp_path / "south.log").read_text()
