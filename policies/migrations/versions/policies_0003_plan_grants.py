"""Escrow plans whose locks the engine authorized (their claims and refunds follow).

Revision ID: policies_0003
Revises: policies_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "policies_0003"
down_revision = "policies_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_grants",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("plan_id", sa.String(128), nullable=False),
        sa.Column("granted_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_plan_grants_agent_plan", "plan_grants", ["agent", "plan_id"])


def downgrade() -> None:
    op.drop_index("ix_plan_grants_agent_plan", table_name="plan_grants")
    op.drop_table("plan_grants")
