"""`audit verify` and `audit show` on a deployment's real store."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import typer
import yaml
from typer.testing import CliRunner

from agents.app.commands.agents import register
from agents.audit import AuditEntry, AuditLog, PolicyVerdict, append
from config.errors import AuditError
from config.loader import load_deployment
from config.store import open_store
from tests.agents.conftest import deployment_data, make_signer

app = typer.Typer()
register(app)
runner = CliRunner()


def deployment_file(tmp_path: Path) -> Path:
    data = deployment_data()
    data["data_dir"] = str(tmp_path / "data")
    path = tmp_path / "covenant.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def seed_log(path: Path, count: int = 3) -> None:
    engine = open_store(str(load_deployment(path).store.url))
    signer = make_signer()
    plan = {
        "actions": [
            {
                "kind": "transfer",
                "chain": "arb",
                "asset": "USDC",
                "amount": "5",
                "counterparty": "acme",
            }
        ],
        "rationale": "invoice [red]7[/]",
        "confidence": "0.9",
    }
    for n in range(count):
        append(
            engine,
            "alice",
            signer,
            AuditEntry(
                observation_digest=f"{n:064x}",
                plan=plan,
                raw_outputs=("{...}",),
                verdicts=(
                    PolicyVerdict(
                        action=0, policy="SpendLimit", verdict="deny", reason="over 5 USDC per day"
                    ),
                ),
            ),
        )
    engine.dispose()


def test_verify_passes_on_an_untouched_log_and_names_the_tampered_entry(tmp_path):
    path = deployment_file(tmp_path)
    seed_log(path)
    result = runner.invoke(app, ["audit", "verify", str(path)])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output
    engine = open_store(str(load_deployment(path).store.url))
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_entries WHERE seq=1"))
    engine.dispose()
    result = runner.invoke(app, ["audit", "verify", str(path), "alice"])
    assert isinstance(result.exception, AuditError)
    assert "alice entry 2 deleted: entries 1..1 are missing before entry 2" in result.output


def test_verify_with_the_wrong_did_fails(tmp_path):
    path = deployment_file(tmp_path)
    seed_log(path, 1)
    other = make_signer(b"\x09" * 32).did
    result = runner.invoke(app, ["audit", "verify", str(path), "alice", "--did", other])
    assert isinstance(result.exception, AuditError)
    assert "signature" in result.output


def test_show_prints_plans_verdicts_and_evidence_readably(tmp_path):
    path = deployment_file(tmp_path)
    seed_log(path, 2)
    result = runner.invoke(
        app, ["audit", "show", str(path), "alice", "--last", "1"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "alice #1" in result.output
    assert "alice #0" not in result.output
    assert "pay 5 USDC on arb to acme — invoice [red]7[/]" in result.output
    assert "action 0 SpendLimit → deny: over 5 USDC per day" in result.output


def test_show_says_when_there_is_nothing(tmp_path):
    result = runner.invoke(app, ["audit", "show", str(deployment_file(tmp_path)), "bob"])
    assert result.exit_code == 0
    assert "bob has no audit entries yet" in result.output


def test_show_prints_fields_of_a_runtime_record_it_does_not_know(tmp_path):
    path = deployment_file(tmp_path)
    engine = open_store(str(load_deployment(path).store.url))
    log = AuditLog(engine, {"alice": make_signer()})
    log.append(
        "alice",
        {
            "observation_digest": "ab" * 32,
            "plan_id": "p-1",
            "actions": [{"state": "denied", "policy": "Allowlist"}],
        },
    )
    assert log.verify("alice").ok
    engine.dispose()
    result = runner.invoke(app, ["audit", "show", str(path), "alice"], terminal_width=200)
    assert "plan_id: p-1" in result.output
    assert "policy=Allowlist, state=denied" in result.output
