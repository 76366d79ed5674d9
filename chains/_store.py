"""The chains package's tables: EVM nonce reservations and the transaction journal.

Both live in the deployment store (see ``chains/migrations``) so that a restarted daemon
knows which nonces it handed out and which signed transactions may be on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()

nonces = sa.Table(
    "chain_nonces",
    metadata,
    sa.Column("chain_id", sa.BigInteger, primary_key=True),
    sa.Column("address", sa.String(64), primary_key=True),
    sa.Column("next_nonce", sa.BigInteger, nullable=False),
    sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
)

journal = sa.Table(
    "chain_tx_journal",
    metadata,
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

OPEN_STATES = ("signed", "broadcast", "unknown")
"""Journal states of a transaction that may still land."""


@contextmanager
def relaxed(engine: Engine) -> Iterator[Connection]:
    """A transaction whose commit need not reach the disk before we go on.

    For writes that a crash may lose without harm because they are re-derived from the
    chain and the journal (nonce reservations, status updates after broadcast). The
    store's SQLite connections run with ``synchronous=FULL`` so that a journaled
    transaction is on disk before it is broadcast; here one connection drops to NORMAL
    (still crash-safe in WAL mode, only a power loss can drop the last commits) and is
    put back to FULL before it returns to the pool.
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
            connection.commit()  # ends SQLAlchemy's autobegun transaction
        try:
            with connection.begin():
                yield connection
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA synchronous=FULL")
                connection.commit()


def now() -> datetime:
    """The current time, timezone-aware, as every row stores it."""
    return datetime.now(UTC)


class NonceStore:
    """Hands out EVM nonces per (chain id, sender), durably.

    The next nonce is the largest of: what the node counts as pending, one past the
    highest nonce in an open journal entry, and the last reservation. A reservation that
    was never journaled within `reservation_ttl` is given out again, so a build that was
    abandoned without :meth:`release` (a crash) leaves no gap for long; a build a policy
    denied is released at once.
    """

    def __init__(
        self, engine: Engine, *, reservation_ttl: timedelta = timedelta(seconds=60)
    ) -> None:
        self._engine = engine
        self._ttl = reservation_ttl

    def reserve(self, chain: str, chain_id: int, address: str, chain_pending: int) -> int:
        """Reserve and return the next nonce for `address`."""
        with relaxed(self._engine) as connection:
            floor = max(chain_pending, _journal_next(connection, chain, address))
            row = connection.execute(
                sa.select(nonces.c.next_nonce, nonces.c.reserved_at).where(
                    nonces.c.chain_id == chain_id, nonces.c.address == address
                )
            ).first()
            nonce = floor
            if row is not None and not self._stale(row.reserved_at):
                nonce = max(floor, row.next_nonce)
            _upsert(connection, chain_id, address, nonce + 1)
            return nonce

    def release(self, chain_id: int, address: str, nonce: int) -> bool:
        """Give `nonce` back if it is still the latest reservation (later ones would be
        left behind a gap otherwise); True if it was given back."""
        key = (nonces.c.chain_id == chain_id) & (nonces.c.address == address)
        with relaxed(self._engine) as connection:
            result = connection.execute(
                nonces.update()
                .where(key & (nonces.c.next_nonce == nonce + 1))
                .values(next_nonce=nonce)
            )
            return bool(result.rowcount)

    def resync(self, chain_id: int, address: str, chain_next: int) -> None:
        """Forget reservations below what the chain has already used ("nonce too low")."""
        with relaxed(self._engine) as connection:
            _upsert(connection, chain_id, address, chain_next)

    def _stale(self, reserved_at: datetime) -> bool:
        if reserved_at.tzinfo is None:  # SQLite returns naive datetimes
            reserved_at = reserved_at.replace(tzinfo=UTC)
        return now() - reserved_at > self._ttl


def _journal_next(connection: Connection, chain: str, address: str) -> int:
    highest = connection.execute(
        sa.select(sa.func.max(journal.c.nonce)).where(
            journal.c.chain == chain,
            journal.c.sender == address,
            journal.c.status.in_(OPEN_STATES),
        )
    ).scalar()
    return 0 if highest is None else int(highest) + 1


def _upsert(connection: Connection, chain_id: int, address: str, next_nonce: int) -> None:
    key = (nonces.c.chain_id == chain_id) & (nonces.c.address == address)
    values = {"next_nonce": next_nonce, "reserved_at": now()}
    if connection.execute(nonces.update().where(key).values(**values)).rowcount == 0:
        connection.execute(nonces.insert().values(chain_id=chain_id, address=address, **values))
