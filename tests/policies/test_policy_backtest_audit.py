"""`policy backtest --from-audit`: replay what an agent's audit log recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from agents import audit
from agents.actions.base import ActionResult
from agents.agent import audit_entry
from agents.audit import AuditLog
from agents.plan import Plan
from agents.planners.types import Observation, PlanResult
from config.loader import load_deployment
from config.store import open_store
from main import main
from policies.actions import ConfidenceEvidence
from policies.backtest import audit_actions, backtest
from policies.testing import make_action, make_evidence
from tests.policies.test_policy_cli import DEPLOYMENT
from wallets._secrets import Secret
from wallets.jws import JwsSigner

# The recorded deployment had no per-day limit; the candidate below adds one.
CANDIDATE = DEPLOYMENT.replace(
    '      - HumanApproval: {above_usd: "500"}',
    '      - HumanApproval: {above_usd: "500"}\n      - SpendLimit: {per_day: {ETH: "0.05"}}',
).replace("data_dir: state", "data_dir: candidate-state")


def _tick(minute: int, evidence: ConfidenceEvidence, *amounts: str) -> dict[str, object]:
    at = datetime(2026, 1, 5, 12, minute, tzinfo=UTC)
    observation = Observation(agent="payer", at=at, mandate="Pay invoices.")
    result = PlanResult(plan=Plan(rationale="pay"), evidence=evidence)
    actions = [
        make_action(chain="evm-local", amount=amount, plan_id=f"p{minute}-{n}")
        for n, amount in enumerate(amounts)
    ]
    executed = [ActionResult(state="executed", summary=a.summary(), action=a) for a in actions]
    refused = ActionResult(state="error", summary="no such asset")  # never reached policies
    return audit_entry(observation, result, f"p{minute}", [*executed, refused])


def _record(file: Path) -> None:
    deployment = load_deployment(file)
    assert deployment.store.url is not None
    store = open_store(deployment.store.url)
    try:
        log = AuditLog(store, {"payer": JwsSigner(Secret(b"\x07" * 32))})
        ticks = [
            (0, make_evidence("0.9"), ("0.02",)),
            (1, make_evidence("0.9"), ("0.02", "0.02")),  # two actions in one entry
            (2, make_evidence("0.1"), ("0.001",)),  # the breaker would open
            (3, make_evidence("0.9"), ()),  # a plan with no action
        ]
        for minute, evidence, amounts in ticks:
            at = datetime(2026, 1, 5, 12, minute, 30, tzinfo=UTC)
            log.append("payer", _tick(minute, evidence, *amounts), at=at)
    finally:
        store.dispose()


def test_backtest_replays_an_agents_audit_log_through_other_policies(
    tmp_path: Path, capsys
) -> None:
    recorded, candidate = _files(tmp_path)
    _record(recorded)
    capsys.readouterr()
    argv = ["policy", "backtest", str(candidate), "--from-audit", str(recorded)]
    assert main([*argv, "--agent", "payer"]) == 0
    assert "2 authorized, 2 denied, 0 queued" in capsys.readouterr().out
    assert main(argv) == 0  # every agent with a log: only payer has one
    assert "2 authorized, 2 denied, 0 queued" in capsys.readouterr().out


async def test_each_recorded_action_is_replayed_at_its_entrys_time(tmp_path: Path) -> None:
    recorded, candidate = _files(tmp_path)
    _record(recorded)
    deployment = load_deployment(recorded)
    assert deployment.store.url is not None
    store = open_store(deployment.store.url)
    try:
        stored = [(r.seq, r.at, r.body) for r in audit.entries(store, "payer")]
    finally:
        store.dispose()
    replayed = audit_actions(stored)
    assert [source for source, _ in replayed] == ["entry 0", "entry 1.0", "entry 1.1", "entry 2"]
    assert [item.confidence.score for _, item in replayed if item.confidence] == [
        make_evidence(score).score for score in ("0.9", "0.9", "0.9", "0.1")
    ]
    rows = await backtest(load_deployment(candidate), replayed)
    # 0.02 + 0.02 fit the candidate's 0.05 a day, a third 0.02 does not; the plan with
    # confidence 0.1 meets the breaker.
    assert [(row.verdict, row.policy) for row in rows] == [
        ("authorized", None),
        ("authorized", None),
        ("denied", "SpendLimit"),
        ("denied", "ConfidenceBreaker"),
    ]
    assert rows[1].at == datetime(2026, 1, 5, 12, 1, 30, tzinfo=UTC)


def test_backtest_from_audit_names_the_agents_that_have_a_log(tmp_path: Path, capsys) -> None:
    recorded, _ = _files(tmp_path)
    _record(recorded)
    argv = ["policy", "backtest", str(recorded), "--from-audit", str(recorded)]
    assert main([*argv, "--agent", "quiet"]) == 1
    err = capsys.readouterr().err
    assert "no audit log for agent 'quiet'" in err
    assert "payer" in err
    assert main(["policy", "backtest", str(recorded)]) == 1
    assert "exactly one source of actions" in capsys.readouterr().err


def _files(folder: Path) -> tuple[Path, Path]:
    recorded = folder / "deployment.yaml"
    recorded.write_text(DEPLOYMENT, encoding="utf-8")
    candidate = folder / "candidate.yaml"
    candidate.write_text(CANDIDATE, encoding="utf-8")
    return recorded, candidate
