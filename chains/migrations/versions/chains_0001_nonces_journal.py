"""Chains: EVM nonce reservations and the transaction journal.

Revision ID: chains_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "chains_0001"
down_revision = None
branch_labels = ("chains",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_nonces",
        sa.Column("chain_id", sa.BigInteger, primary_key=True),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("next_nonce", sa.BigInteger, nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "chain_tx_journal",
        sa.Column("tx_id", sa.String(100), primary_key=True),
        sa.Column("chain", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("nonce", sa.BigInteger, nullable=True),
        sa.Column("expires_at_height", sa.BigInteger, nullable=True),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("replaces", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_chain_tx_journal_open", "chain_tx_journal", ["chain", "status"])


def downgrade() -> None:
    op.drop_index("ix_chain_tx_journal_open", "chain_tx_journal")
    op.drop_table("chain_tx_journal")
    op.drop_table("chain_nonces")
