"""Breaker resets counter: a running engine adopts a reset when it sees it grow.

Revision ID: policies_0002
Revises: policies_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "policies_0002"
down_revision = "policies_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("breaker_state") as batch:
        batch.add_column(sa.Column("resets", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("breaker_state") as batch:
        batch.drop_column("resets")
