"""The inboxes' durable record (tables of migration ``a2a_0001``): each accepted message,
written before the sender hears "accepted", so a replay is refused after a restart as
before it; and each refusal with its reason, counted per sender."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from config.canonical import canonical
from config.clock import to_us, utc_now

metadata = sa.MetaData()
a2a_messages = sa.Table(
    "a2a_messages",
    metadata,
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("message_id", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("sender", sa.String(200), nullable=False),
    sa.Column("plan", sa.String(200), nullable=False),
    sa.Column("issued_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("received_at_us", sa.BigInteger, nullable=False),
)
a2a_refusals = sa.Table(
    "a2a_refusals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("sender", sa.String(200), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
)


@dataclass(frozen=True)
class StoredMessage:
    """An accepted message as stored (its body is untrusted data)."""

    agent: str
    message_id: str
    kind: str
    sender: str
    plan: str
    issued_at: int
    expires_at: int
    body: dict[str, object]


class MessageStore:
    """Accepted and refused messages of every agent in one store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, message: StoredMessage) -> bool:
        """Store an accepted message; False if its id was already stored (a replay)."""
        row = {
            "agent": message.agent,
            "message_id": message.message_id,
            "kind": message.kind,
            "sender": message.sender,
            "plan": message.plan,
            "issued_at": message.issued_at,
            "expires_at": message.expires_at,
            "body": canonical(message.body).decode(),
            "received_at_us": to_us(utc_now()),
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(a2a_messages.insert().values(**row))
        except IntegrityError:
            return False
        return True

    def refused(self, agent: str, sender: str, reason: str) -> None:
        """Record one refusal of a message to `agent`."""
        with self.engine.begin() as connection:
            connection.execute(
                a2a_refusals.insert().values(
                    agent=agent, sender=sender, reason=reason, at_us=to_us(utc_now())
                )
            )

    def messages(
        self,
        agent: str | None = None,
        kind: str | None = None,
        *,
        plan: str | None = None,
        live_at: int | None = None,
    ) -> list[StoredMessage]:
        """Accepted messages, oldest first, optionally of one agent, kind or plan, or
        only those still holding at `live_at` (unix seconds)."""
        query = sa.select(a2a_messages).order_by(a2a_messages.c.received_at_us)
        if agent is not None:
            query = query.where(a2a_messages.c.agent == agent)
        if kind is not None:
            query = query.where(a2a_messages.c.kind == kind)
        if plan is not None:
            query = query.where(a2a_messages.c.plan == plan)
        if live_at is not None:
            query = query.where(a2a_messages.c.expires_at > live_at)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            StoredMessage(
                agent=row["agent"],
                message_id=row["message_id"],
                kind=row["kind"],
                sender=row["sender"],
                plan=row["plan"],
                issued_at=row["issued_at"],
                expires_at=row["expires_at"],
                body=json.loads(row["body"]),
            )
            for row in rows
        ]

    def refusals(self, agent: str) -> Counter[tuple[str, str]]:
        """Refusals of messages to `agent` by (sender, reason)."""
        query = sa.select(a2a_refusals.c.sender, a2a_refusals.c.reason).where(
            a2a_refusals.c.agent == agent
        )
        with self.engine.connect() as connection:
            return Counter((sender, reason) for sender, reason in connection.execute(query))
