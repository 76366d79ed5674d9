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
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa

from agents.a2a.messages import TYP, sign_message
from agents.a2a.outbox import DeliveryError, Outbox
from agents.a2a.peers import fetch_peer
from agents.a2a.store import a2a_refusals
from chains.devnet import manager as devnet
from chains.families.evm._anvil import anvil_path
from config.store import open_store
from tests.a2a._concurrently import concurrently
from tests.a2a._two_operators import (
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
from wallets._secrets import Secret
from wallets.jws import JwsSigner
from wallets.operator import open_wallets

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


@pytest.mark.timeout(600)
def test_an_offer_without_authority_is_refused_and_nothing_locks(tmp_path: Path) -> None:
    if anvil_path() is None:
        pytest.skip("anvil not installed: run `npm ci` (scripts/setup.sh does)")
    cases = {
        name: partial(_case, tmp_path / name, block, *spoils)
        for block, (name, spoils) in enumerate(CASES.items())
    }
    concurrently(cases, workers=len(cases))


def _case(tmp_path: Path, block: int, before_start: Spoil, once_up: Spoil, reason: str) -> None:
    tmp_path.mkdir()
    # North offers on its 3rd tick; south plans to take it on its 9th (refused whether
    # north's offer is still live or has expired: south checks north's authority first).
    north, south, urls = two_operators(tmp_path, idle=(2, 8), block=block)
    daemons = []
    try:
        before_start(north, south, urls)
        before = {side.name: asyncio.run(balances(side, urls)) for side in (north, south)}
        daemons.append(start(north, tmp_path / "north.log"))
        wait_for(north.serving, 60, "north's agent card")
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


def test_a_running_daemon_refuses_replayed_forged_and_stray_messages(tmp_path: Path) -> None:
    """South's daemon, as another operator's hostile agent reaches it over the SDK's own
    client: a replay of a message it took, one signed by a key that is not the sender's
    DID, one from a DID it has no entry for, an expired one and one for someone else are
    each refused with their reason, recorded per sender; the first, fresh message (the
    negative control) is taken; and south keeps ticking."""
    if anvil_path() is None:
        pytest.skip("anvil not installed: run `npm ci` (scripts/setup.sh does)")
    north, south, _ = two_operators(tmp_path, idle=(100, 100))
    engine = open_store(north.deployment.store.url or "")
    try:
        alice = open_wallets(north.deployment, engine, PASSPHRASE).agent(north.agent).jws_signer()
    finally:
        engine.dispose()
    stranger = JwsSigner(Secret(os.urandom(32)))
    now = int(time.time())
    offer = sign_message(
        alice, kind="offer", recipient=south.did, plan="alice-replayed", body={}, now=now
    )
    forged = stranger.sign_json(
        {**_claims(offer), "jti": "forged-offer-1", "body": {"forged": True}}, typ=TYP
    )
    sent = {
        "fresh": offer,
        "replay": offer,
        "wrong-signer": forged,
        "unknown-sender": sign_message(
            stranger, kind="offer", recipient=south.did, plan="p", body={}, now=now
        ),
        "expired": sign_message(
            alice, kind="offer", recipient=south.did, plan="p", body={}, now=now - 900
        ),
        "wrong-recipient": sign_message(
            alice, kind="offer", recipient=north.did, plan="p", body={}, now=now
        ),
    }
    daemon = start(south, tmp_path / "south.log")
    try:
        wait_for(south.serving, 60, "south's agent card")
        ticks_before = south.audit().count("\n")
        answers = asyncio.run(_deliver_each(south, sent))
        wait_for(lambda: south.audit().count("\n") > ticks_before, 30, "south's next tick")
    finally:
        stop(daemon)
        devnet.down(north.deployment)
    assert answers["fresh"].startswith("accepted: offer"), answers
    for reason in ("replay", "wrong-signer", "unknown-sender", "expired", "wrong-recipient"):
        assert answers[reason].startswith(f"refused: {reason}"), (reason, answers[reason])
    engine = open_store(south.deployment.store.url or "")
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(a2a_refusals.c.sender, a2a_refusals.c.reason))
            recorded = {(sender, reason) for sender, reason in rows}
    finally:
        engine.dispose()
    assert {reason for _, reason in recorded} == set(sent) - {"fresh"}, recorded
    assert (north.did, "replay") in recorded
    assert (stranger.did, "unknown-sender") in recorded


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 3))
    return claims


async def _deliver_each(side: Side, tokens: dict[str, str]) -> dict[str, str]:
    """Each token sent, in order, to `side`'s agent as its own A2A message; the answer."""
    peer = await fetch_peer(f"http://127.0.0.1:{side.port}/agents/{side.agent}")
    outbox = Outbox()
    answers = {}
    try:
        for name, token in tokens.items():
            try:
                answers[name] = await outbox.deliver(peer, token)
            except DeliveryError as exc:  # "<name> did not take the message: refused: ..."
                answers[name] = str(exc).split("did not take the message: ", 1)[-1]
    finally:
        await outbox.close()
    return answers
