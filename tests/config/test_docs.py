"""The documents stand on their own: every file they cite is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CITED_FILE = re.compile(r"`([A-Za-z_][\w/.-]*\.(?:py|md|yaml|yml|json|sol|sh|toml|cjs|elf))`")


def cited_files(text: str) -> set[str]:
    """Repository paths quoted in `text` (a bare name like `py.typed` is not a path)."""
    return {match for match in CITED_FILE.findall(text) if "/" in match or match.endswith(".md")}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_cited_file_exists(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert "DESIGN.md" not in text, "the design notes live outside the repository"
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
