"""The README's configuration reference matches the models; init and schema work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import main
from config import load_deployment
from config.reference import END, START, render_reference

ROOT = Path(__file__).resolve().parents[2]


def test_readme_reference_is_in_sync_with_the_schema() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    current = START + readme.split(START, 1)[1].split(END, 1)[0] + END + "\n"
    assert current == render_reference(), (
        "README configuration reference is stale: run "
        "`python main.py config reference --write README.md`"
    )


def test_every_model_field_is_in_the_reference() -> None:
    from config.reference import SECTIONS

    text = render_reference()
    for model in SECTIONS:
        for name in model.model_fields:
            assert f"| `{name}` |" in text, (model.__name__, name)


def test_schema_is_json_and_forbids_unknown_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert {"chains", "agents", "planners", "operator"} <= set(schema["properties"])


def test_demo_and_examples_validate() -> None:
    for file in [
        ROOT / "config" / "demo.yaml",
        *sorted((ROOT / "config" / "examples").glob("*.yaml")),
    ]:
        assert main.main(["config", "validate", str(file)]) == 0, file


def test_init_scaffolds_a_valid_deployment(tmp_path: Path) -> None:
    target = tmp_path / "My Shop"
    assert main.main(["init", str(target)]) == 0
    deployment = load_deployment(target / "covenant.yaml")
    assert deployment.name == "my-shop"
    assert deployment.data_dir == str((target / ".covenant").resolve())
    # The payer's invoice inbox came along, where its TaskFile source reads it.
    (source,) = deployment.agent("payer").sources
    params = source["TaskFile"]
    assert params is not None
    inbox = Path(params["path"])
    assert inbox == (target / "demo-invoices.yaml").resolve()
    assert "inv-1" in inbox.read_text()
    assert main.main(["init", str(target)]) == 1  # never overwrites


def test_a_dumped_deployment_validates_again() -> None:
    from config.models import Deployment

    deployment = load_deployment(ROOT / "config" / "demo.yaml")
    assert Deployment.model_validate(deployment.model_dump()) == deployment
    assert Deployment.model_validate_json(deployment.model_dump_json()) == deployment
