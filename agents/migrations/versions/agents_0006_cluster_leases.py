"""Cluster mode: one lease per agent (owner, epoch, expiry by the database clock), the
live daemons, every change of owner (for `cluster status` and take-over figures), and
an opt-in record of fenced commits for the acceptance test's checker.

Revision ID: agents_0006
Revises: agents_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "agents_0006"
down_revision = "agents_0005"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cluster_leases",
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(120), nullable=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("claimed_at", _WHEN, nullable=True),
    )
    op.create_table(
        "cluster_daemons",
        sa.Column("daemon", sa.String(120), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("seen_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
    )
    op.create_table(
        "cluster_lease_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(120), nullable=False),
        sa.Column("previous_owner", sa.String(120), nullable=True),
        sa.Column("previous_expired_at", _WHEN, nullable=True),
        sa.Column("claimed_at", _WHEN, nullable=False),
        sa.UniqueConstraint("agent", "epoch", name="uq_cluster_lease_history_agent_epoch"),
    )
    op.create_table(
        "cluster_writes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(120), nullable=False),
        sa.Column("at", _WHEN, nullable=False),
    )


def downgrade() -> None:
    for table in ("cluster_writes", "cluster_lease_history", "cluster_daemons", "cluster_leases"):
        op.drop_table(table)
