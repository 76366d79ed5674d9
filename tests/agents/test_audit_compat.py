"""An audit log written before the canonical JSON kernel still verifies.

`fixtures/audit_log_before_canonical.json` holds the rows of a log written by the code
of commit e4c3563 (three entries: big integers, non-ASCII text, control characters, a
free-form body), exported as they sit in the store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from agents.audit import audit_entries, audit_heads, verify
from config.store import open_store

FIXTURE = Path(__file__).parent / "fixtures" / "audit_log_before_canonical.json"


def load(tmp_path: Path, edit: dict[str, Any] | None = None) -> Any:
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    engine = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.begin() as connection:
        for table in (audit_entries, audit_heads):
            for stored in data[table.name]:
                row = dict(stored)
                if edit and table is audit_entries and row["seq"] == edit["seq"]:
                    row["body"] = row["body"].replace(edit["old"], edit["new"])
                connection.execute(sa.insert(table).values(**row))
    return engine, data["did"]


def test_a_log_written_before_the_kernel_verifies(tmp_path: Path) -> None:
    engine, did = load(tmp_path)
    report = verify(engine, "alice", expected_did=did)
    assert report.ok, report.problems
    assert report.entries == 3
    engine.dispose()


@pytest.mark.parametrize(("seq", "old", "new"), [(0, "901", "900"), (1, "Café", "Cafe")])
def test_an_edit_of_that_log_is_still_found(tmp_path: Path, seq: int, old: str, new: str) -> None:
    """Negative control: the same fixture with one character changed does not verify."""
    engine, did = load(tmp_path, {"seq": seq, "old": old, "new": new})
    report = verify(engine, "alice", expected_did=did)
    assert not report.ok
    assert {problem.seq for problem in report.problems} == {seq}
    engine.dispose()
