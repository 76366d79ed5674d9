"""Console tokens: created by the CLI, shown once, stored only as their SHA-256.

A token is 32 random bytes (256 bits), so a plain SHA-256 is enough to make the stored
hash useless to a thief: there is nothing to guess, and a slow password hash would only
slow every login. The table belongs to the agents package's migration branch
(`agents/migrations/versions/agents_0004_console_tokens.py`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from config.clock import utc_now
from config.errors import ConfigError

PREFIX = "cvt_"
"""Every token starts with this, so a leaked one is easy to search for (and to tell apart
from a passphrase)."""

metadata = sa.MetaData()
console_tokens = sa.Table(
    "console_tokens",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True)
class ConsoleToken:
    """A stored token, without the token: its id, label and dates."""

    id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


def token_hash(token: str) -> str:
    """The SHA-256 (hex) a token is stored and looked up under."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(engine: Engine, label: str) -> tuple[ConsoleToken, str]:
    """A new token: its stored record and the token itself, which only the caller sees."""
    if not label.strip() or len(label) > 200:
        raise ConfigError("a console token's --label must be 1 to 200 characters")
    token = PREFIX + secrets.token_urlsafe(32)
    record = ConsoleToken(secrets.token_hex(4), label, utc_now(), None)
    with engine.begin() as connection:
        connection.execute(
            console_tokens.insert().values(
                id=record.id,
                token_sha256=token_hash(token),
                label=label,
                created_at=record.created_at,
                revoked_at=None,
            )
        )
    return record, token


def check_token(engine: Engine, token: str) -> ConsoleToken | None:
    """The live token record `token` belongs to, or None (unknown or revoked)."""
    if not token.startswith(PREFIX):
        return None
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(console_tokens).where(console_tokens.c.token_sha256 == token_hash(token))
        ).first()
    if row is None or row.revoked_at is not None:
        return None
    return _record(row)


def is_live(engine: Engine, token_id: str) -> bool:
    """Whether the token with `token_id` exists and is not revoked (checked on every
    request, so revoking a token ends its sessions at once)."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(console_tokens.c.revoked_at).where(console_tokens.c.id == token_id)
        ).first()
    return row is not None and row.revoked_at is None


def list_tokens(engine: Engine) -> list[ConsoleToken]:
    """Every token record, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(console_tokens).order_by(console_tokens.c.created_at))
        return [_record(row) for row in rows]


def _record(row: sa.Row[object]) -> ConsoleToken:
    created = _utc(row.created_at)
    assert created is not None  # the column is NOT NULL
    return ConsoleToken(row.id, row.label, created, _utc(row.revoked_at))


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite gives back naive datetimes; they were written in UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def revoke_token(engine: Engine, token_id: str) -> None:
    """Revoke the token `token_id`; its sessions end on their next request."""
    with engine.begin() as connection:
        updated = connection.execute(
            console_tokens.update()
            .where(console_tokens.c.id == token_id, console_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utc_now())
        ).rowcount
    if not updated:
        raise ConfigError(
            f"no live console token {token_id!r}; `console token list FILE` shows the ids"
        )
