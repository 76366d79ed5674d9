"""Atomic coordinator: plans (per agent), their legs and journaled steps.

Revision ID: atomic_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "atomic_0001"
down_revision = None
branch_labels = ("atomic",)
depends_on = "config_0001"

_PLAN = (["agent", "plan_id"], ["atomic_plans.agent", "atomic_plans.plan_id"])


def upgrade() -> None:
    op.create_table(
        "atomic_plans",
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
    op.create_table(
        "atomic_legs",
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
        sa.ForeignKeyConstraint(*_PLAN),
    )
    op.create_table(
        "atomic_steps",
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
        sa.ForeignKeyConstraint(*_PLAN),
    )
    op.create_index("atomic_steps_plan", "atomic_steps", ["agent", "plan_id", "idx"])


def downgrade() -> None:
    op.drop_index("atomic_steps_plan", "atomic_steps")
    op.drop_table("atomic_steps")
    op.drop_table("atomic_legs")
    op.drop_table("atomic_plans")
