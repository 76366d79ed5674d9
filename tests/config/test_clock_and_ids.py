"""The one clock and id helpers of config/: exact microsecond round trips, aware UTC, and
ids that keep their 32-hex-digit shape."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from config.clock import from_us, to_us, utc_now
from config.ids import PROCESS_TAG, new_id


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 12, 3, 6, 5, 4, 321_987, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ],
)
def test_microseconds_round_trip_exactly(moment: datetime) -> None:
    assert from_us(to_us(moment)) == moment


def test_microseconds_count_from_the_epoch() -> None:
    assert to_us(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == 1_000_005
    other_zone = datetime(1970, 1, 1, 1, 0, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=1)))
    assert to_us(other_zone) == 3_600_000_000


def test_now_is_aware_utc() -> None:
    now = utc_now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_ids_are_unique_32_hex_digits_with_the_process_tag() -> None:
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)
    assert all(value.startswith(PROCESS_TAG) for value in ids)
