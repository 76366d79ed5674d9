"""Agent identities: the stable HD index of each agent name.

Revision ID: config_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "config_0001"
down_revision = None
branch_labels = ("config",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_identities",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("hd_index", sa.Integer, nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_identities")
