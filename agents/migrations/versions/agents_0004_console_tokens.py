"""Console tokens: the operator's logins to the web console, stored only as SHA-256
hashes (the token itself is printed once by `console token create` and kept nowhere).

Revision ID: agents_0004
Revises: agents_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "agents_0004"
down_revision = "agents_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("console_tokens")
