"""The chains package's tables: EVM nonce reservations and the transaction journal.

Both live in the deployment store (see ``chains/migrations``) so that a restarted daemon
knows which nonces it handed out and which signed transactions may be on the wire.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from config.errors import StoreError

metadata = sa.MetaData()

reservations = sa.Table(
    "chain_nonce_reservations",
    metadata,
    sa.Column("chain", sa.String(64), primary_key=True),
    sa.Column("address", sa.String(64), primary_key=True),
    sa.Column("nonce", sa.BigInteger, primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
)
"""A nonce handed to a build that has not reached the journal yet, and who holds it."""

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
    """Hands out EVM nonces per (chain, sender) so that no two builds share one and no
    crash leaves a gap.

    A nonce is in use when the chain counts it (below its pending nonce), when an open
    journal entry carries it, or when a live build holds a reservation for it. A reserve
    takes the lowest nonce in none of these, in one transaction whose insert the primary
    key makes exclusive (and that is serialized per account), so
    released and crashed reservations are reused, never skipped. :meth:`TxJournal.record`
    turns a reservation into a journal entry in the same transaction.

    A reservation is live while its holder process is (one daemon per store: a holder
    process that is gone on this machine crashed) and for at most `reservation_ttl`, so a
    build held for a person's approval does not block the account behind it.
    """

    def __init__(
        self, engine: Engine, *, reservation_ttl: timedelta = timedelta(seconds=60)
    ) -> None:
        self._engine = engine
        self._ttl = reservation_ttl

    def reserve(self, chain: str, address: str, chain_pending: int) -> int:
        """Reserve and return the lowest free nonce of `address` at or above `chain_pending`
        (the chain's pending transaction count)."""
        for _ in range(_RESERVE_ATTEMPTS):
            try:
                with relaxed(self._engine) as connection:
                    return self._reserve(connection, chain, address, chain_pending)
            except IntegrityError:
                continue  # another build took the same nonce first: look again
        raise StoreError(
            f"{chain}: could not reserve a nonce for {address} after {_RESERVE_ATTEMPTS} "
            "attempts; too many builds from one account at once, retry"
        )

    def _reserve(self, connection: Connection, chain: str, address: str, pending: int) -> int:
        key = (reservations.c.chain == chain) & (reservations.c.address == address)
        _lock_account(connection, chain, address)
        connection.execute(reservations.delete().where(key & (reservations.c.nonce < pending)))
        rows = connection.execute(
            sa.select(
                reservations.c.nonce, reservations.c.holder, reservations.c.reserved_at
            ).where(key)
        ).all()
        dead = [row.nonce for row in rows if not self._live(row.holder, row.reserved_at)]
        if dead:
            connection.execute(reservations.delete().where(key & reservations.c.nonce.in_(dead)))
        taken = {row.nonce for row in rows if row.nonce not in dead}
        taken |= _journaled_nonces(connection, chain, address, pending)
        nonce = pending
        while nonce in taken:
            nonce += 1
        connection.execute(
            reservations.insert().values(
                chain=chain, address=address, nonce=nonce, holder=holder(), reserved_at=now()
            )
        )
        return nonce

    def release(self, chain: str, address: str, nonce: int) -> None:
        """Give `nonce` back: the build will never be signed (a policy denied it)."""
        with relaxed(self._engine) as connection:
            connection.execute(
                reservations.delete().where(
                    (reservations.c.chain == chain)
                    & (reservations.c.address == address)
                    & (reservations.c.nonce == nonce)
                )
            )

    def release_all(self, chain: str, addresses: Collection[str]) -> None:
        """Drop every reservation of `addresses` on `chain`. Cluster mode calls it when
        their agents' leases change owner: the old owner's builds can no longer be
        journaled (fenced), so their nonces are free, even if that process is alive."""
        with self._engine.begin() as connection:
            connection.execute(
                reservations.delete().where(
                    (reservations.c.chain == chain) & reservations.c.address.in_(list(addresses))
                )
            )

    def _live(self, holder_id: str, reserved_at: datetime) -> bool:
        if reserved_at.tzinfo is None:  # SQLite returns naive datetimes
            reserved_at = reserved_at.replace(tzinfo=UTC)
        return now() - reserved_at <= self._ttl and _holder_alive(holder_id)


_RESERVE_ATTEMPTS = 50


def _lock_account(connection: Connection, chain: str, address: str) -> None:
    """Serialize reserves of one account until this transaction ends.

    SQLite needs nothing here: the delete that follows takes the database's write lock
    before anything is read. PostgreSQL gets a transaction-scoped advisory lock (gone at
    commit, rollback or a dropped connection, so a dead process holds nothing); without
    it concurrent reserves pick the same nonce and all but one retry, which starves.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"covenant-nonce/{chain}/{address}"},
        )


def _journaled_nonces(connection: Connection, chain: str, address: str, floor: int) -> set[int]:
    rows = connection.execute(
        sa.select(journal.c.nonce).where(
            journal.c.chain == chain,
            journal.c.sender == address,
            journal.c.status.in_(OPEN_STATES),
            journal.c.nonce >= floor,
        )
    )
    return {int(row.nonce) for row in rows}


def holder() -> str:
    """This process, as a reservation records it: host, pid and the pid's start time
    (so a recycled pid is not taken for the process that crashed)."""
    pid = os.getpid()
    return f"{socket.gethostname()}/{pid}/{_started(pid)}"


def _holder_alive(holder_id: str) -> bool:
    host, _, rest = holder_id.partition("/")
    pid_text, _, started = rest.partition("/")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine's process: only the TTL can tell
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return _started(pid) == started


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "" elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces; fields after its ")" are plain.
    return stat.rpartition(")")[2].split()[19]
