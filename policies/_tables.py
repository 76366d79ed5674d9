"""The policy layer's tables (created by the `policies` Alembic branch).

Timestamps are integer microseconds since the epoch: exact, cheap to compare, and the
same on SQLite and PostgreSQL. Amounts are decimal strings, never floats.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

policy_control = sa.Table(
    "policy_control",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)
"""One row; the CLI bumps `version` so running engines reload control state."""

breaker_state = sa.Table(
    "breaker_state",
    metadata,
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("opened_at_us", sa.BigInteger, nullable=True),
    sa.Column("probes_granted", sa.Integer, nullable=False),
    sa.Column("probes_succeeded", sa.Integer, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("low_plans", sa.Text, nullable=False),
    sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("resets", sa.Integer, nullable=False, server_default="0"),
)
"""`resets` counts `breakers reset`; only the CLI changes it."""

spend_ledger = sa.Table(
    "spend_ledger",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("chain", sa.String(64), nullable=False),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("amount", sa.String(80), nullable=False),
    sa.Column("usd", sa.String(80), nullable=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Index("ix_spend_ledger_at", "at_us"),
)
"""One row per authorized action: reserved, then settled or released."""

authorized_intents = sa.Table(
    "authorized_intents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("intent", sa.String(64), nullable=False),
    sa.Column("digest", sa.LargeBinary(32), nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Index("ix_authorized_intents_agent_at", "agent", "at_us"),
)
"""What DuplicateGuard authorized: one row per guarded action, deleted if it failed."""

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False, index=True),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("action_json", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requested_at_us", sa.BigInteger, nullable=False),
    sa.Column("expires_at_us", sa.BigInteger, nullable=False),
    sa.Column("decided_at_us", sa.BigInteger, nullable=True),
    sa.Column("decided_by", sa.String(128), nullable=True),
)

policy_engine = sa.Table(
    "policy_engine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("claimed_at_us", sa.BigInteger, nullable=False),
)
"""One row: the epoch of the one engine allowed to write policy state (see _store)."""

kill_switches = sa.Table(
    "kill_switches",
    metadata,
    sa.Column("target", sa.String(64), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("halted_at_us", sa.BigInteger, nullable=False),
)
"""A row means halted; `target` is an agent name or `*` for every agent."""

GLOBAL = "*"
