"""The one wall clock and the one integer time format of the store.

Every stored timestamp and signed time is timezone-aware UTC. Where a table keeps time
as integer microseconds since the epoch (exact, cheap to compare, the same on SQLite and
PostgreSQL), :func:`to_us` and :func:`from_us` convert, losing nothing either way.
"""

from __future__ import annotations

from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (integer arithmetic: no float
    timestamp in between, so no microsecond is rounded away)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(micros: int) -> datetime:
    """The aware UTC datetime of `micros` microseconds since the epoch."""
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)
