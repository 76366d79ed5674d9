"""`config validate` checks scripted plans against the plan model of each agent that uses
the planner (a newcomer's `definitely_not_a_field` under an action passed validation and
failed only when the daemon ran)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from main import app

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")
SWAP_LINE = "          - kind: swap\n            counterparty: taker\n"


def _validate(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "deployment.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    return result.exit_code, f"{result.output}{result.exception or ''}"


def test_an_unknown_key_in_a_scripted_action_is_refused_by_name(tmp_path: Path) -> None:
    assert SWAP_LINE in DEMO
    broken = DEMO.replace(SWAP_LINE, SWAP_LINE + "            definitely_not_a_field: 1\n", 1)
    code, output = _validate(tmp_path, broken)
    assert code != 0
    line = broken.splitlines().index("            definitely_not_a_field: 1") + 1
    # file:line: field path in the file (no pydantic union tag): what is wrong
    assert f"deployment.yaml:{line}: planners[1].plans[0].actions[0].definitely_not_a_field:" in (
        " ".join(output.split())
    )
    assert "unknown key 'definitely_not_a_field'" in output
    assert "'maker'" in output  # the agent whose plan model refused it


def test_the_demo_as_shipped_validates(tmp_path: Path) -> None:
    """Negative control: the same file without the stray key is valid."""
    code, output = _validate(tmp_path, DEMO)
    assert code == 0, output
    assert "valid: 3 agents" in output
