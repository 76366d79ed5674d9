"""The webhook outbox: each alert for each receiver, written before it is sent and marked
when the receiver took it, so a restart resends what was not taken and nothing twice.

Revision ID: agents_0005
Revises: agents_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "agents_0005"
down_revision = "agents_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger, nullable=False),
        sa.Column("delivered_at_us", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.UniqueConstraint("event_id", "url", name="uq_webhook_outbox_event_url"),
    )


def downgrade() -> None:
    op.drop_table("webhook_outbox")
