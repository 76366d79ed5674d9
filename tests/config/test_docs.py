"""The repository stands on its own: every file its documents and code cite is in it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OUTSIDE_NOTES = "DESIGN" + ".md"  # spelled apart so this file does not cite it either
TEXT_FILES = re.compile(r"\.(py|md|yaml|yml|sh|toml|sol|s|cfg|ini)$")
CITED_FILE = re.compile(r"`([A-Za-z_][\w/.-]*\.(?:py|md|yaml|yml|json|sol|sh|toml|cjs|elf))`")


def cited_files(text: str) -> set[str]:
    """Repository paths quoted in `text` (a bare name like `py.typed` is not a path)."""
    return {match for match in CITED_FILE.findall(text) if "/" in match or match.endswith(".md")}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_cited_file_exists(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert OUTSIDE_NOTES not in text, "the design notes live outside the repository"
    missing = sorted(
        path
        for path in cited_files(text)
        if not (ROOT / path).exists() and not (document.parent / path).exists()
    )
    assert missing == [], f"{document.name} cites files that are not in the repository"


def test_the_check_sees_a_missing_file() -> None:
    """Negative control: a cited path that does not exist is found."""
    assert cited_files("see `chains/nowhere.py` and `docs/architecture.md`") == {
        "chains/nowhere.py",
        "docs/architecture.md",
    }
    assert not (ROOT / "chains/nowhere.py").exists()


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / name for name in listed if TEXT_FILES.search(name)]


def test_no_file_of_the_repository_cites_one_outside_it() -> None:
    offenders = {}
    for path in _tracked_text_files():
        if path == Path(__file__).resolve():
            continue  # the negative control below cites a missing file on purpose
        text = path.read_text(encoding="utf-8", errors="replace")
        missing = sorted(
            cited
            for cited in cited_files(text)
            if not (ROOT / cited).exists() and not (path.parent / cited).exists()
        )
        if OUTSIDE_NOTES in text or missing:
            offenders[str(path.relative_to(ROOT))] = missing or [OUTSIDE_NOTES]
    assert offenders == {}
