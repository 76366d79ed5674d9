"""Helpers shared by the policy tests."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

from config.store import open_store


@functools.cache
def _template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="covenant-policy-template-"))
    engine = open_store(f"sqlite:///{folder / 'state.db'}")
    engine.dispose()
    return folder / "state.db"


def fresh_store_url(folder: str) -> str:
    """A migrated SQLite store in `folder`, copied from a template (migrating is slow)."""
    target = Path(folder) / "state.db"
    shutil.copy(_template(), target)
    return f"sqlite:///{target}"
