"""A daemon killed while it creates or upgrades its store can open it again.

Found by the crash-anywhere campaign: a SIGKILL during the first migration left tables
without an ``alembic_version`` row (Python's sqlite3 driver commits before each DDL
statement on its own), and every later start failed with "table agent_identities
already exists". Real SQLite file, real process killed with SIGKILL after its n-th DDL
statement.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from config.store import open_store

ROOT = Path(__file__).resolve().parents[2]
_KILLED_AFTER_DDL = textwrap.dedent(
    """
    import os, signal, sys
    import sqlalchemy as sa
    from sqlalchemy import event
    from config.store import open_store

    seen = 0

    @event.listens_for(sa.engine.Engine, "after_cursor_execute")
    def count(conn, cursor, statement, *args):
        global seen
        if statement.lstrip().upper().startswith(("CREATE", "DROP", "ALTER")):
            seen += 1
            if seen == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)

    open_store(sys.argv[1])
    print("finished", seen)
    """
)


def _open_and_die(url: str, after: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_DDL, url, str(after)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _tables(url: str) -> set[str]:
    engine = open_store(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("after", [1, 2, 7, 15])
def test_a_store_killed_mid_migration_opens_again(tmp_path: Path, after: int) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    killed = _open_and_die(url, after)
    assert killed.returncode == -9, killed.stderr  # it died inside the migration
    expected = _tables(f"sqlite:///{tmp_path / 'clean.db'}")
    assert _tables(url) == expected  # reopened: every table, the migrations complete


def test_the_kill_lands_inside_the_migration(tmp_path: Path) -> None:
    """Negative control for the counts above: a migration runs more DDL statements than
    the largest kill point, so each kill interrupts it rather than following it."""
    finished = _open_and_die(f"sqlite:///{tmp_path / 'state.db'}", 10_000)
    assert finished.returncode == 0, finished.stderr
    assert int(finished.stdout.split()[-1]) > 15
