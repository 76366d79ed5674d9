"""Audit log: hash-chained, signed entries per agent and the signed head of each chain.

Revision ID: agents_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "agents_0001"
down_revision = None
branch_labels = ("agents",)
depends_on = "config_0001"


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("did", sa.String(128), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )
    op.create_table(
        "audit_heads",
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_heads")
    op.drop_table("audit_entries")
