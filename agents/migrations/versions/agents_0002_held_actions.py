"""Held actions (transactions waiting for a person's approval, kept byte for byte),
agent heartbeats (what `status` shows of a running daemon) and scripted planners'
positions (so a restart never replays a plan).

An approval is bound to the exact transaction digest, so the runtime keeps the unsigned
transaction it showed the policies and re-submits that same transaction once approved.

Revision ID: agents_0002
Revises: agents_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "agents_0002"
down_revision = "agents_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_actions",
        sa.Column("approval_id", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False, index=True),
        sa.Column("chain", sa.String(64), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("unsigned", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "agent_heartbeats",
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("last_tick_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_tick_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ticks", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_result", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
    )

    op.create_table(
        "planner_cursors",
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("planner_cursors")
    op.drop_table("agent_heartbeats")
    op.drop_table("held_actions")
