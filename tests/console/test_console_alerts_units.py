"""The outbox, the alert producer and the JSON-lines log, on a real SQLite store."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from agents import log_context
from agents.console import outbox
from agents.console.alerts import Alerts, signature, signature_ok
from agents.log_context import JsonLines
from config.errors import ConfigError
from config.models import Webhook
from config.store import open_store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def store(tmp_path: Path):
    engine = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield engine
    engine.dispose()


def test_enqueueing_an_event_twice_stores_it_once(store) -> None:
    data = {"agent": "maker"}
    assert outbox.enqueue(store, [URL], "approval_waiting", "approval_waiting:a1", data, now=NOW)
    again = outbox.enqueue(store, [URL], "approval_waiting", "approval_waiting:a1", data, now=NOW)
    assert again == 0
    assert outbox.undelivered(store) == 1
    assert outbox.known(store) == {("approval_waiting:a1", URL)}


def test_a_failed_delivery_waits_longer_each_time_and_a_delivered_one_is_done(store) -> None:
    outbox.enqueue(store, [URL], "breaker_opened", "breaker_opened:payer:1", {}, now=NOW)
    waits = []
    moment = NOW
    for _ in range(4):
        (row,) = outbox.due(store, moment)
        outbox.failed(store, row, moment, "HTTP 503")
        assert outbox.due(store, moment) == []  # not again at once
        later = outbox.due(store, moment + timedelta(seconds=600))
        waits.append(later[0].attempts)
        moment += timedelta(seconds=600)
    assert waits == [1, 2, 3, 4]
    (row,) = outbox.due(store, moment)
    outbox.delivered(store, row, moment)
    assert outbox.undelivered(store) == 0
    assert outbox.due(store, moment + timedelta(days=1)) == []


def test_a_missing_secret_is_a_config_error_naming_the_variable(store, monkeypatch) -> None:
    hook = Webhook(url=URL, events=["approval_waiting"], secret_env="COVENANT_NO_SUCH_SECRET")
    monkeypatch.delenv("COVENANT_NO_SUCH_SECRET", raising=False)
    with pytest.raises(ConfigError, match="COVENANT_NO_SUCH_SECRET"):
        Alerts([hook], store, {})
    # Negative control: with the variable set the alerts start.
    monkeypatch.setenv("COVENANT_NO_SUCH_SECRET", "s3")
    assert Alerts([hook], store, {}).produce(NOW) == 0


def test_the_signature_covers_timestamp_and_body() -> None:
    mac = signature(b"k", "1700000000", b"{}")
    assert mac.startswith("sha256=")
    assert signature_ok(b"k", "1700000000", b"{}", mac)
    assert not signature_ok(b"k", "1700000001", b"{}", mac)
    assert not signature_ok(b"k", "1700000000", b"{ }", mac)


def test_json_lines_carry_the_agent_and_plan() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("covenant.test.jsonl")
    logger.addHandler(handler)
    agent, plan = log_context.AGENT.set("maker"), log_context.PLAN.set("maker-0123")
    try:
        try:
            raise ValueError("bad amount")
        except ValueError:
            logger.exception("tick failed")
    finally:
        log_context.AGENT.reset(agent)
        log_context.PLAN.reset(plan)
        logger.removeHandler(handler)
    logger.warning("outside a tick")
    line = json.loads(stream.getvalue().splitlines()[0])
    assert (line["agent"], line["plan"], line["message"]) == ("maker", "maker-0123", "tick failed")
    assert line["error"] == "ValueError: bad amount"
    assert "Traceback" in line["traceback"]


def test_an_edited_audit_entry_raises_one_audit_broken_alert(store, monkeypatch) -> None:
    from agents.audit import append, verify
    from tests.agents.conftest import make_signer

    signer = make_signer()
    for n in range(3):
        append(store, "alice", signer, {"observation_digest": "0" * 64, "note": f"tick {n}"})
    hook = Webhook(url=URL, events=["audit_broken"], secret_env="COVENANT_HOOK_TEST")
    monkeypatch.setenv("COVENANT_HOOK_TEST", "s3")
    alerts = Alerts([hook], store, {}, audits=lambda: [verify(store, "alice")])
    alerts._check_audit(NOW)
    assert alerts.produce(NOW) == 0  # negative control: an intact log raises nothing

    with store.begin() as connection:
        connection.execute(
            sa.text("UPDATE audit_entries SET body=replace(body, 'tick 1', 'tick X') WHERE seq=1")
        )
    alerts = Alerts([hook], store, {}, audits=lambda: [verify(store, "alice")])
    alerts._check_audit(NOW)
    assert alerts.produce(NOW) == 1
    assert alerts.produce(NOW) == 0  # the same problem is one alert, not one per round
    (row,) = outbox.due(store, NOW)
    assert row.event_id == "audit_broken:alice:1:edited"
    assert outbox.body_json(row)["data"]["agent"] == "alice"


def test_an_open_plan_past_every_deadline_raises_plan_stuck(store, monkeypatch) -> None:
    from chains.atomic import Leg, PlanRecord, PlanStore

    def plan(plan_id: str, deadline: int) -> PlanRecord:
        leg = Leg(
            index=0,
            chain="arbitrum-local",
            sender="0x" + "11" * 20,
            recipient="0x" + "22" * 20,
            amount=5,
            deadline=deadline,
            locator="0x" + "ab" * 32,
        )
        return PlanRecord(
            plan_id=plan_id,
            agent="maker",
            kind="plan",
            state="locking",
            hashlock=bytes(32),
            preimage_journaled=True,
            legs=(leg,),
        )

    now = int(NOW.timestamp())
    PlanStore(store).create(plan("late", now - 60))
    PlanStore(store).create(plan("on-time", now + 3600))  # negative control
    hook = Webhook(url=URL, events=["plan_stuck"], secret_env="COVENANT_HOOK_TEST")
    monkeypatch.setenv("COVENANT_HOOK_TEST", "s3")
    assert Alerts([hook], store, {}).produce(NOW) == 1
    assert [row.event_id for row in outbox.due(store, NOW)] == ["plan_stuck:late"]


def _pending_request(store, request_id: str, expires_at: datetime) -> None:
    from config.clock import to_us
    from policies._tables import approvals

    row = {
        "id": request_id,
        "agent": "maker",
        "digest": "ab" * 32,
        "fingerprint": request_id * 8,
        "summary": "transfer 0.2 ETH to taker",
        "reason": "above the approval threshold",
        "action_json": "{}",
        "status": "pending",
        "requested_at_us": to_us(NOW),
        "expires_at_us": to_us(expires_at),
    }
    with store.begin() as connection:
        connection.execute(approvals.insert().values(row))


def test_an_approval_about_to_expire_raises_approval_expiring_once(store, monkeypatch) -> None:
    _pending_request(store, "soon", NOW + timedelta(minutes=5))
    _pending_request(store, "later", NOW + timedelta(hours=2))  # negative control
    hook = Webhook(
        url=URL,
        events=["approval_expiring"],
        secret_env="COVENANT_HOOK_TEST",
        expiring_within="10m",
    )
    monkeypatch.setenv("COVENANT_HOOK_TEST", "s3")
    alerts = Alerts([hook], store, {})
    assert alerts.produce(NOW) == 1
    assert alerts.produce(NOW) == 0  # once, not once per round
    assert [row.event_id for row in outbox.due(store, NOW)] == ["approval_expiring:soon"]
    # The later one fires when it, too, has less than ten minutes left.
    assert alerts.produce(NOW + timedelta(hours=1, minutes=51)) == 1
    assert outbox.known(store) >= {("approval_expiring:later", URL)}


async def test_an_unreachable_chain_raises_rpc_unreachable_and_a_reachable_one_none(
    store, monkeypatch
) -> None:
    import httpx

    from tests.console.conftest import _free_port

    async def reachable() -> int:
        return 1

    async def closed_port() -> None:
        async with httpx.AsyncClient() as client:  # a real refused connection
            await client.get(f"http://127.0.0.1:{_free_port()}/", timeout=2)

    hook = Webhook(url=URL, events=["rpc_unreachable"], secret_env="COVENANT_HOOK_TEST")
    monkeypatch.setenv("COVENANT_HOOK_TEST", "s3")
    alerts = Alerts([hook], store, {"arbitrum-local": reachable, "solana-local": closed_port})
    await alerts._check_rpc(NOW)
    assert alerts.produce(NOW) == 1
    (row,) = outbox.due(store, NOW)
    assert row.event_id == f"rpc_unreachable:solana-local:{int(NOW.timestamp())}"
    assert outbox.body_json(row)["data"]["chain"] == "solana-local"
    # Still down at the next check: the same outage, not a second alert.
    await alerts._check_rpc(NOW + timedelta(minutes=1))
    assert alerts.produce(NOW + timedelta(minutes=1)) == 0
