"""The composition layer (agents/app) is the top of the import graph: no package imports it.

If a library module reached up into the CLI, the daemon or the runtime wiring, building
an agent would drag the whole application in, and wiring would hide below the top again.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agents", "chains", "policies", "wallets", "config")
TOP = "agents.app"


def reaching_up(source: str) -> list[str]:
    """Imports in `source` that name the composition layer."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [name for name in names if name == TOP or name.startswith(TOP + ".")]
    return found


def test_no_package_imports_the_composition_layer() -> None:
    offenders = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if relative.parts[:2] == ("agents", "app"):
                continue
            hits = reaching_up(path.read_text())
            if hits:
                offenders[str(relative)] = hits
    assert offenders == {}


def test_the_check_sees_an_import_of_the_top() -> None:
    # Negative control: the scan must report both import forms.
    assert reaching_up("from agents.app.runtime import Runtime\nimport agents.app.daemon\n") == [
        "agents.app.runtime",
        "agents.app.runtime.Runtime",
        "agents.app.daemon",
    ]
    assert reaching_up("from agents import audit\n") == []


def test_the_cli_is_assembled_in_the_composition_layer() -> None:
    from agents.app.commands import COMMAND_GROUPS

    assert all(group.__name__.startswith("agents.app.commands.") for group in COMMAND_GROUPS)
    assert all(callable(group.register) for group in COMMAND_GROUPS)
