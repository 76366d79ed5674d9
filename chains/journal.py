"""The transaction journal: signed bytes hit the store before they hit the wire.

:class:`TxJournal` keeps every signed transaction with its state, and takes over the
nonce reservation of the transaction it records in the same commit. Sending, tracking
and reconciling on restart are :mod:`chains.sender`'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Engine

from chains._store import OPEN_STATES, journal, now, relaxed, reservations
from chains.base import (
    TxId,
    UnsignedTx,
)
from config.errors import (
    ChainError,
)

logger = logging.getLogger(__name__)

Signer = Callable[[UnsignedTx], Awaitable[bytes]]
"""Signs an unsigned transaction and returns the raw signed bytes (wallets' job)."""


class JournalEntry(BaseModel):
    """One journaled signed transaction."""

    model_config = ConfigDict(frozen=True)

    tx_id: str
    chain: str
    sender: str
    nonce: int | None
    expires_at_height: int | None
    raw: bytes
    status: str
    reason: str | None
    replaces: str | None

    @property
    def may_land(self) -> bool:
        """Whether this transaction may still land: signed, broadcast or unknown."""
        return self.status in OPEN_STATES


class TxJournal:
    """The store table of signed transactions and where each one stands."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self, chain: str, tx: UnsignedTx, tx_id: TxId, raw: bytes, *, replaces: str | None = None
    ) -> None:
        """Durably write `raw` as status 'signed' (the commit returns after fsync).

        The same transaction twice is refused: on Solana two identical intents built in
        the same block share a blockhash and so are one transaction, which lands once.
        """
        nonce, expires = tx.nonce, tx.expires_at_height
        stamp = now()
        if self.get(tx_id) is not None:
            raise ChainError(
                f"{chain}: transaction {tx_id} is already journaled; an identical intent "
                "must be built again (new blockhash or nonce) to be a second payment"
            )
        with self._engine.begin() as connection:
            if nonce is not None:  # the entry now holds the nonce its reservation held
                connection.execute(
                    reservations.delete().where(
                        (reservations.c.chain == chain)
                        & (reservations.c.address == tx.sender)
                        & (reservations.c.nonce == nonce)
                    )
                )
            connection.execute(
                journal.insert().values(
                    tx_id=tx_id,
                    chain=chain,
                    sender=tx.sender,
                    nonce=nonce,
                    expires_at_height=expires,
                    raw=raw,
                    status="signed",
                    replaces=replaces,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )

    def mark(self, tx_id: str, status: str, reason: str | None = None) -> None:
        """Set the status (signed, broadcast, unknown, final, failed, expired, replaced).

        Not forced to disk: a lost status update is re-derived from the chain by
        :func:`reconcile`; only :meth:`record` must be durable before a broadcast.
        """
        with relaxed(self._engine) as connection:
            connection.execute(
                journal.update()
                .where(journal.c.tx_id == tx_id)
                .values(status=status, reason=reason, updated_at=now())
            )

    def get(self, tx_id: str) -> JournalEntry | None:
        """The entry for `tx_id`, if journaled."""
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(journal).where(journal.c.tx_id == tx_id)).first()
        return None if row is None else _entry(row)

    def open_entries(self, chain: str) -> list[JournalEntry]:
        """Entries on `chain` that may still land, oldest first."""
        query = (
            sa.select(journal)
            .where(journal.c.chain == chain, journal.c.status.in_(OPEN_STATES))
            .order_by(journal.c.created_at)
        )
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query)]

    def entries(self, chain: str) -> list[JournalEntry]:
        """Every entry on `chain`, oldest first."""
        query = sa.select(journal).where(journal.c.chain == chain).order_by(journal.c.created_at)
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query)]

    def confirmation_seconds(self) -> dict[str, list[float]]:
        """Per chain, the seconds each final transaction took from journaling (the
        durable write just before its broadcast) to the final mark."""
        found: dict[str, list[float]] = {}
        for confirmed in self.confirmed_since(None):
            found.setdefault(confirmed.chain, []).append(confirmed.seconds)
        return found

    def confirmed_since(self, since: datetime | None) -> list[Confirmed]:
        """The transactions marked final at or after `since` (None: all), in that order,
        so a reader can go on from the last one it saw instead of rereading them all."""
        query = sa.select(
            journal.c.tx_id, journal.c.chain, journal.c.created_at, journal.c.updated_at
        ).where(journal.c.status == "final")
        if since is not None:
            query = query.where(journal.c.updated_at >= since)
        query = query.order_by(journal.c.updated_at)
        with self._engine.connect() as connection:
            return [
                Confirmed(tx_id, chain, updated, (updated - created).total_seconds())
                for tx_id, chain, created, updated in connection.execute(query)
            ]


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A final transaction: when it became final and how long it took from journaling."""

    tx_id: str
    chain: str
    at: datetime
    seconds: float


def _entry(row: sa.Row[tuple[object, ...]]) -> JournalEntry:
    return JournalEntry.model_validate(row._asdict())


def store_entry(store: TxJournal, tx_id: str) -> JournalEntry:
    """The journal entry for `tx_id`; ChainError if it was never journaled."""
    entry = store.get(tx_id)
    if entry is None:
        raise ChainError(f"transaction {tx_id} is not in the journal; journal before sending")
    return entry
