"""The webhook outbox: durable rows, one per (event, receiver).

An event is enqueued under a stable id (`approval_waiting:<request id>`, ...), and the
unique key makes enqueueing idempotent: a producer that runs again after a restart adds
nothing it added before. A row is marked delivered only after the receiver answered
2xx; a failure pushes its next attempt back exponentially (1 s, 2 s, 4 s ... capped).
A crash after the receiver took an event and before the mark resends it, with the same
`X-Covenant-Event-Id`, which is how a receiver drops the rare duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from config.canonical import canonical

metadata = sa.MetaData()
webhook_outbox = sa.Table(
    "webhook_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(200), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at_us", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_us", sa.BigInteger, nullable=False),
    sa.Column("delivered_at_us", sa.BigInteger, nullable=True),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.UniqueConstraint("event_id", "url", name="uq_webhook_outbox_event_url"),
)

MAX_BACKOFF = 300.0
"""Seconds between attempts at most."""


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


@dataclass(frozen=True)
class Pending:
    """One undelivered row."""

    id: int
    event_id: str
    url: str
    event: str
    body: bytes
    attempts: int


def enqueue(
    engine: Engine,
    urls: list[str],
    event: str,
    event_id: str,
    data: dict[str, Any],
    *,
    now: datetime,
) -> int:
    """Add the event for each receiver that has not had it yet; returns how many rows
    were added (0 when every receiver already has it)."""
    body = canonical({"event": event, "id": event_id, "at": now.isoformat(), "data": data})
    added = 0
    for url in urls:
        try:
            with engine.begin() as connection:
                connection.execute(
                    webhook_outbox.insert().values(
                        event_id=event_id,
                        url=url,
                        event=event,
                        body=body.decode(),
                        created_at_us=_us(now),
                        attempts=0,
                        next_attempt_us=_us(now),
                        delivered_at_us=None,
                        last_error="",
                    )
                )
            added += 1
        except IntegrityError:
            continue  # already enqueued (by this run or one before it)
    return added


def known(engine: Engine) -> set[tuple[str, str]]:
    """Every (event id, receiver url) ever enqueued, so producers skip them unwritten."""
    query = sa.select(webhook_outbox.c.event_id, webhook_outbox.c.url)
    with engine.connect() as connection:
        return {(row.event_id, row.url) for row in connection.execute(query)}


def due(engine: Engine, now: datetime, limit: int = 50) -> list[Pending]:
    """Undelivered rows whose next attempt is due, oldest first."""
    query = (
        sa.select(webhook_outbox)
        .where(
            webhook_outbox.c.delivered_at_us.is_(None),
            webhook_outbox.c.next_attempt_us <= _us(now),
        )
        .order_by(webhook_outbox.c.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [Pending(r.id, r.event_id, r.url, r.event, r.body.encode(), r.attempts) for r in rows]


def delivered(engine: Engine, row: Pending, now: datetime) -> None:
    """The receiver took `row`."""
    with engine.begin() as connection:
        connection.execute(
            webhook_outbox.update()
            .where(webhook_outbox.c.id == row.id)
            .values(delivered_at_us=_us(now), attempts=row.attempts + 1)
        )


def failed(engine: Engine, row: Pending, now: datetime, error: str) -> None:
    """`row` was not taken: try again after an exponential back-off."""
    delay = min(MAX_BACKOFF, 2.0**row.attempts)
    with engine.begin() as connection:
        connection.execute(
            webhook_outbox.update()
            .where(webhook_outbox.c.id == row.id)
            .values(
                attempts=row.attempts + 1,
                next_attempt_us=_us(now) + int(delay * 1_000_000),
                last_error=error[:500],
            )
        )


def body_json(row: Pending) -> dict[str, Any]:
    """The row's body as data (for tests and logs)."""
    return dict(json.loads(row.body))


def undelivered(engine: Engine) -> int:
    """How many rows wait for delivery (due now or later)."""
    query = sa.select(sa.func.count()).where(webhook_outbox.c.delivered_at_us.is_(None))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())
