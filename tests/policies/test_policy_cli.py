"""The CLI against a running engine sharing the same store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.loader import load_deployment
from config.store import open_store
from main import main
from policies import Authorized, Denied, Outcome, PolicyEngine, Queued
from policies.testing import SUPPLIER_EVM, FakeClock, make_action, make_evidence

DEPLOYMENT = """
version: 1
name: clitest
data_dir: state
operator: {name: op}
chains:
  - {name: evm-local, family: evm, chain_id: 31337, rpc: local}
assets:
  - {symbol: ETH, chain: evm-local, native: true, decimals: 18, usd_price: "3000"}
address_book:
  - name: acme-supplier
    addresses: {evm-local: "SUPPLIER"}
planners:
  - {name: script, kind: scripted}
agents:
  - name: payer
    schedule: {every: 30s}
    mandate: Pay invoices.
    planner: script
    chains: [evm-local]
    policies:
      - KillSwitch: {}
      - ConfidenceBreaker: {min_confidence: "0.6", cooldown: 5m, probes: 1}
      - Allowlist: {recipients: [acme-supplier]}
      - HumanApproval: {above_usd: "500"}
  - name: quiet
    schedule: {every: 30s}
    mandate: Do nothing.
    planner: script
    chains: [evm-local]
""".replace("SUPPLIER", SUPPLIER_EVM)


@pytest.fixture
def file(tmp_path: Path) -> Path:
    path = tmp_path / "deployment.yaml"
    path.write_text(DEPLOYMENT, encoding="utf-8")
    return path


@pytest.fixture
def engine(file: Path):
    deployment = load_deployment(file)
    assert deployment.store.url is not None
    store = open_store(deployment.store.url)
    # Poll control state on every evaluation so the test sees CLI changes at once.
    # The CLI decides with the wall clock, so the engine's clock starts at the real now.
    clock = FakeClock(datetime.now(UTC))
    yield PolicyEngine(deployment, store, clock=clock, control_poll=timedelta(0))
    store.dispose()


async def _evaluate(engine: PolicyEngine, score: str = "0.9", **fields: object) -> Outcome:
    action = make_action(chain="evm-local", **fields)
    ctx = engine.context("payer", plan_id=action.plan_id, evidence=make_evidence(score))
    return await engine.evaluate(action, ctx)


async def test_halt_and_resume_reach_a_running_engine(
    file: Path, engine: PolicyEngine, capsys
) -> None:
    assert isinstance(await _evaluate(engine), Authorized)
    assert main(["agents", "halt", str(file), "payer", "--reason", "incident 42"]) == 0
    outcome = await _evaluate(engine, plan_id="q")
    assert isinstance(outcome, Denied)
    assert "incident 42" in outcome.reason
    assert main(["agents", "resume", str(file), "payer"]) == 0
    assert isinstance(await _evaluate(engine, plan_id="r"), Authorized)
    assert main(["agents", "halt", str(file), "--all"]) == 0
    assert isinstance(await _evaluate(engine, plan_id="s"), Denied)
    assert main(["agents", "halt", str(file), "quiet"]) == 0
    assert "quiet ha(s/ve) no KillSwitch policy" in capsys.readouterr().out


async def test_breakers_list_and_reset(file: Path, engine: PolicyEngine, capsys) -> None:
    await _evaluate(engine, score="0.1")
    assert main(["breakers", "list", str(file)]) == 0
    assert "open" in capsys.readouterr().out
    assert isinstance(await _evaluate(engine, plan_id="q"), Denied)
    assert main(["breakers", "reset", str(file), "payer"]) == 0
    assert isinstance(await _evaluate(engine, plan_id="r"), Authorized)


async def test_approvals_list_and_approve(file: Path, engine: PolicyEngine, capsys) -> None:
    queued = await _evaluate(engine, amount="0.5")
    assert isinstance(queued, Queued)
    assert queued.approval_id is not None
    assert main(["approvals", "list", str(file)]) == 0
    assert queued.approval_id in capsys.readouterr().out
    assert main(["approvals", "approve", str(file), queued.approval_id]) == 0
    outcome = await _evaluate(engine, amount="0.5")
    assert isinstance(outcome, Authorized)
    assert main(["approvals", "reject", str(file), queued.approval_id]) == 1
    assert "already" in capsys.readouterr().err


def test_unknown_agent_is_one_red_line(file: Path, capsys) -> None:
    assert main(["breakers", "reset", str(file), "ghost"]) == 1
    err = capsys.readouterr().err
    assert "unknown agent 'ghost'" in err
    assert "Traceback" not in err


def test_backtest_prints_what_would_have_happened(file: Path, tmp_path: Path, capsys) -> None:
    lines = []
    for index, (amount, score) in enumerate([("0.01", "0.9"), ("0.5", "0.9"), ("0.01", "0.1")]):
        action = make_action(chain="evm-local", amount=amount, plan_id=f"p{index}")
        record = json.loads(action.model_dump_json())
        record["at"] = f"2026-01-05T12:0{index}:00+00:00"
        record["confidence"] = make_evidence(score).model_dump(exclude={"score"}, mode="json")
        lines.append(json.dumps(record))
    actions = tmp_path / "actions.jsonl"
    actions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["policy", "backtest", str(file), "--actions", str(actions)]) == 0
    out = capsys.readouterr().out
    assert "1 authorized, 1 denied, 1 queued" in out
    assert not (tmp_path / "state" / "state.db").exists()  # the real store is untouched


def test_backtest_reports_the_bad_line(file: Path, tmp_path: Path, capsys) -> None:
    actions = tmp_path / "actions.jsonl"
    actions.write_text('{"agent": "payer"}\n', encoding="utf-8")
    assert main(["policy", "backtest", str(file), "--actions", str(actions)]) == 1
    assert "actions.jsonl:1: not a recorded action" in capsys.readouterr().err


def test_config_validate_reports_policy_problems(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(DEPLOYMENT.replace("probes: 1", "probes: 0"), encoding="utf-8")
    assert main(["config", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "agents[0].policies[1] (agent 'payer', policy 'ConfidenceBreaker'): probes" in err
