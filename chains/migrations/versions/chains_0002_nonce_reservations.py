"""Chains: one row per reserved EVM nonce, with the process that holds it.

The single high-water mark of ``chain_nonces`` could not tell a crashed build's
reservation from a live one, so a restart skipped the nonce and left a gap. Reservations
are re-derived from the chain and the journal, so the old table is dropped, not copied.

Revision ID: chains_0002
Revises: chains_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "chains_0002"
down_revision = "chains_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("chain_nonces")
    op.create_table(
        "chain_nonce_reservations",
        sa.Column("chain", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.BigInteger, primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chain_nonce_reservations")
    op.create_table(
        "chain_nonces",
        sa.Column("chain_id", sa.BigInteger, primary_key=True),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("next_nonce", sa.BigInteger, nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
    )
