"""One engine per store: the `policy_engine` epoch row; rate limits count ledger rows.

`rate_events` held one row per authorized action, which `spend_ledger` already holds
(agent and time included), so RateLimit now rebuilds from the ledger and the table goes.

Revision ID: policies_0004
Revises: policies_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "policies_0004"
down_revision = "policies_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_engine",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("claimed_at_us", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO policy_engine (id, epoch, owner, claimed_at_us) VALUES (1, 0, '', 0)")
    op.drop_index("ix_rate_events_agent_at", table_name="rate_events")
    op.drop_table("rate_events")


def downgrade() -> None:
    op.create_table(
        "rate_events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_rate_events_agent_at", "rate_events", ["agent", "at_us"])
    # Every authorized action was a rate event; the ledger still has them all.
    op.execute(
        "INSERT INTO rate_events (id, agent, at_us) SELECT id, agent, at_us FROM spend_ledger"
    )
    op.drop_table("policy_engine")
