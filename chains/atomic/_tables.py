"""The coordinator's tables: plans, their legs, and every step journaled before it is sent.

What is stored about the secret: the hashlock and the fact that the preimage was
derived (``preimage_journaled``), never the preimage. A crash must lose no preimage,
but writing it to the journal would put a secret in the database; deriving it again from the
agent's seed (HMAC of the seed and the plan id, see ``wallets``) recovers exactly the
same bytes after any crash, so the database never holds a secret.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData()

plans = sa.Table(
    "atomic_plans",
    metadata,
    # Keyed by agent too: two agents of one daemon swapping with each other both journal
    # the same plan id, each with its own side.
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("plan_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("hashlock", sa.String(64), nullable=False),
    sa.Column("preimage_journaled", sa.Boolean, nullable=False),
    sa.Column("counterparty", sa.String(200), nullable=True),
    sa.Column("offer", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

legs = sa.Table(
    "atomic_legs",
    metadata,
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("plan_id", sa.String(64), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("chain", sa.String(64), nullable=False),
    sa.Column("sender", sa.String(64), nullable=False),
    sa.Column("recipient", sa.String(64), nullable=False),
    sa.Column("amount", sa.String(80), nullable=False),
    sa.Column("asset", sa.String(64), nullable=True),
    sa.Column("deadline", sa.BigInteger, nullable=False),
    sa.Column("locator", sa.String(100), nullable=True),
    sa.Column("ours", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.ForeignKeyConstraint(["agent", "plan_id"], ["atomic_plans.agent", "atomic_plans.plan_id"]),
)

steps = sa.Table(
    "atomic_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("plan_id", sa.String(64), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("purpose", sa.String(8), nullable=False),
    sa.Column("tx_id", sa.String(100), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["agent", "plan_id"], ["atomic_plans.agent", "atomic_plans.plan_id"]),
)


def now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)
