"""`pip install` gives a `covenant` executable that is the same CLI as `python main.py`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COVENANT = Path(sys.executable).parent / "covenant"


@pytest.mark.skipif(not COVENANT.exists(), reason="not installed with pip (scripts/setup.sh)")
def test_the_console_script_runs_the_cli() -> None:
    validated = subprocess.run(
        [str(COVENANT), "config", "validate", "config/demo.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert validated.returncode == 0, validated.stderr
    wrong = subprocess.run(
        [str(COVENANT), "config", "validate", "config/nowhere.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong.returncode != 0  # negative control: a bad input still fails through it
    assert "nowhere.yaml" in wrong.stdout + wrong.stderr
