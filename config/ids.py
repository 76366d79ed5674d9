"""Row ids that are unique across processes without asking the store."""

from __future__ import annotations

import itertools
import secrets

PROCESS_TAG = secrets.token_hex(8)
"""Random per process (16 hex digits): the first half of every id this process makes."""

_counter = itertools.count()


def new_id() -> str:
    """A unique row id of 32 hex digits: the process tag, then a counter (cheaper than
    uuid4, and as unlikely to collide across processes)."""
    return f"{PROCESS_TAG}{next(_counter):016x}"
