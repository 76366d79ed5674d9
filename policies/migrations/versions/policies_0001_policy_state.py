"""Policy state: control version, breakers, spend ledger, approvals, rate events, kill
switches.

Revision ID: policies_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "policies_0001"
down_revision = None
branch_labels = ("policies",)
depends_on = "config_0001"


def upgrade() -> None:
    _create_control_and_breakers()
    _create_spend_ledger()
    _create_approvals_rates_and_switches()


def _create_control_and_breakers() -> None:
    op.create_table(
        "policy_control",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "breaker_state",
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("opened_at_us", sa.BigInteger, nullable=True),
        sa.Column("probes_granted", sa.Integer, nullable=False),
        sa.Column("probes_succeeded", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("low_plans", sa.Text, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )


def _create_spend_ledger() -> None:
    op.create_table(
        "spend_ledger",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("chain", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount", sa.String(80), nullable=False),
        sa.Column("usd", sa.String(80), nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_index("ix_spend_ledger_at", "spend_ledger", ["at_us"])


def _create_approvals_rates_and_switches() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("action_json", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at_us", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
        sa.Column("decided_at_us", sa.BigInteger, nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_approvals_fingerprint", "approvals", ["fingerprint"])
    op.create_table(
        "rate_events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_rate_events_agent_at", "rate_events", ["agent", "at_us"])
    op.create_table(
        "kill_switches",
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("halted_at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "kill_switches",
        "rate_events",
        "approvals",
        "spend_ledger",
        "breaker_state",
        "policy_control",
    ):
        op.drop_table(table)
