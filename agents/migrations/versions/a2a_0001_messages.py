"""Agent-to-agent messages: what each agent accepted (so a replay is refused after a
restart too) and what it refused, with the reason and the sender.

A branch of its own (``a2a``), so it orders after the agents' tables without taking a
place in their chain of revisions.

Revision ID: a2a_0001
Revises: (none; depends on agents_0001)
"""

import sqlalchemy as sa
from alembic import op

revision = "a2a_0001"
down_revision = None
branch_labels = ("a2a",)
depends_on = "agents_0001"


def upgrade() -> None:
    op.create_table(
        "a2a_messages",
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
    op.create_table(
        "a2a_refusals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_a2a_refusals_agent_sender", "a2a_refusals", ["agent", "sender"])


def downgrade() -> None:
    op.drop_index("ix_a2a_refusals_agent_sender", "a2a_refusals")
    op.drop_table("a2a_refusals")
    op.drop_table("a2a_messages")
