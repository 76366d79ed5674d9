"""Where audit entries are stored (created by the `agents` Alembic branch), and reading
them back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from agents.audit.entry import GENESIS, AuditRecord
from config.errors import AuditError

metadata = sa.MetaData()

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("did", sa.String(128), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
)
"""One row per entry; (agent, seq) is the position in that agent's chain."""

audit_heads = sa.Table(
    "audit_heads",
    metadata,
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
)
"""The signed position of each agent's last entry (detects a truncated tail)."""


def stored_rows(connection: Connection, agent: str) -> Sequence[sa.RowMapping]:
    """`agent`'s stored entry rows in position order, as stored (body still text)."""
    return (
        connection.execute(
            sa.select(audit_entries)
            .where(audit_entries.c.agent == agent)
            .order_by(audit_entries.c.seq)
        )
        .mappings()
        .all()
    )


def stored_head_row(connection: Connection, agent: str) -> sa.RowMapping | None:
    """`agent`'s signed head row, if there is one."""
    return (
        connection.execute(sa.select(audit_heads).where(audit_heads.c.agent == agent))
        .mappings()
        .first()
    )


def stored_head(connection: Connection, agent: str) -> tuple[int, str]:
    """The next position and previous hash; AuditError if the tail was removed, so that
    writing on would not hide the removal behind a fresh head."""
    last = connection.execute(
        sa.select(audit_entries.c.seq, audit_entries.c.hash)
        .where(audit_entries.c.agent == agent)
        .order_by(audit_entries.c.seq.desc())
        .limit(1)
    ).first()
    head = stored_head_row(connection, agent)
    stored = None if last is None else (last.seq, last.hash)
    recorded = None if head is None else (head["seq"], head["hash"])
    if stored != recorded:
        raise AuditError(
            f"{agent}'s audit log does not end where its signed head says (head "
            f"{recorded and recorded[0]}, last entry {stored and stored[0]}); run "
            "`audit verify` and investigate before the agent runs again"
        )
    return (0, GENESIS) if last is None else (last.seq + 1, last.hash)


def entries(engine: Engine, agent: str) -> list[AuditRecord]:
    """`agent`'s stored entries in position order (not verified; see `verify`)."""
    with engine.connect() as connection:
        rows = stored_rows(connection, agent)
    return [AuditRecord(**{**row, "body": json.loads(row["body"])}) for row in rows]


def agents(engine: Engine) -> list[str]:
    """Agents that have an audit log (entries or a head)."""
    with engine.connect() as connection:
        names = connection.execute(
            sa.union(sa.select(audit_entries.c.agent), sa.select(audit_heads.c.agent))
        ).scalars()
        return sorted(set(names))


def store_rows(
    connection: Connection, rows: list[dict[str, Any]], heads: list[dict[str, Any]]
) -> None:
    """Insert entry `rows` and replace the heads of their agents with `heads`."""
    connection.execute(audit_entries.insert(), rows)
    connection.execute(
        audit_heads.delete().where(audit_heads.c.agent == sa.bindparam("name")),
        [{"name": head["agent"]} for head in heads],
    )
    connection.execute(audit_heads.insert(), heads)
