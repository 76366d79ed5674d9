"""DuplicateGuard's record of what it authorized, so a restart still denies repeats.

Revision ID: policies_0005
Revises: policies_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "policies_0005"
down_revision = "policies_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authorized_intents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("intent", sa.String(64), nullable=False),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_authorized_intents_agent_at", "authorized_intents", ["agent", "at_us"])


def downgrade() -> None:
    op.drop_index("ix_authorized_intents_agent_at", table_name="authorized_intents")
    op.drop_table("authorized_intents")
