"""Heartbeats carry the balances the agent last observed, so `status` (another process,
without the keystore or the chains) can show them.

Revision ID: agents_0003
Revises: agents_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "agents_0003"
down_revision = "agents_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agent_heartbeats") as batch:
        batch.add_column(sa.Column("balances", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("agent_heartbeats") as batch:
        batch.drop_column("balances")
