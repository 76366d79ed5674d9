"""The keys and did commands end to end (production scrypt cost: about 0.5 s per open)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from agents.app.commands.wallets import register
from config.errors import CovenantError

from .conftest import TEST_MNEMONIC, write_deployment

ENV = {"COVENANT_PASSPHRASE": "correct horse battery staple"}


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, list(args), env=env or ENV)
    if isinstance(result.exception, CovenantError):
        return 1, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_import_list_show_issue_verify_revoke(tmp_path: Path) -> None:
    file = str(write_deployment(tmp_path))
    mnemonic = tmp_path / "mnemonic"
    mnemonic.write_text(TEST_MNEMONIC + "\n")
    mnemonic.chmod(0o600)
    assert _run("keys", "import", file, "--mnemonic-file", str(mnemonic))[0] == 0
    code, output = _run("keys", "list", file)
    assert code == 0
    assert "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" in output
    code, output = _run("did", "show", file, "maker")
    document = json.loads(output)
    assert document["id"].startswith("did:key:z6Mk")
    code, output = _run("did", "issue-credential", file, "maker", "--valid-for", "1h")
    credential = tmp_path / "data" / "credentials" / "maker.jwt"
    assert code == 0
    assert credential.exists()
    code, output = _run("did", "verify", file, str(credential), "--agent", "maker")
    assert code == 0
    assert '"perTransaction"' in output
    assert _run("did", "verify", file, str(credential), "--agent", "taker")[0] == 1
    assert _run("did", "revoke", file, str(credential))[0] == 0
    assert _run("did", "revoke", file, "--id", "urn:uuid:another")[0] == 0
    code, message = _run("did", "verify", file, str(credential))
    assert code == 1
    assert "revoked" in message


def test_init_refuses_to_overwrite_and_wrong_passphrase_is_one_clear_error(tmp_path: Path) -> None:
    file = str(write_deployment(tmp_path))
    code, output = _run("keys", "init", file)
    assert code == 0
    assert "operator DID: did:key:z6Mk" in output
    assert "not shown because output is not a terminal" in output
    seed_file = tmp_path / "data" / "keystore" / "operator-seed.json"
    before = seed_file.read_bytes()
    code, message = _run("keys", "init", file)
    assert code == 1
    assert "already exists" in message
    code, message = _run("keys", "list", file, env={"COVENANT_PASSPHRASE": "wrong passphrase"})
    assert code == 1
    assert "passphrase is wrong" in message
    assert str(seed_file) in message
    assert seed_file.read_bytes() == before


def test_verify_needs_no_passphrase_when_the_operator_did_is_in_the_yaml(tmp_path: Path) -> None:
    file = write_deployment(tmp_path)
    assert _run("keys", "init", str(file))[0] == 0
    assert _run("did", "issue-credential", str(file), "payer")[0] == 0
    did = json.loads((tmp_path / "data" / "keystore" / "operator-seed.json").read_text())
    operator_did = did["covenant"]["operator_did"]
    text = file.read_text().replace(
        "name: demo-operator", f"name: demo-operator\n  did: {operator_did}"
    )
    file.write_text(text)
    credential = str(tmp_path / "data" / "credentials" / "payer.jwt")
    code, output = _run("did", "verify", str(file), credential, env={"COVENANT_PASSPHRASE": ""})
    assert code == 0, output
    assert "valid" in output
