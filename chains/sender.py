"""Send through the journal: signed bytes hit the store before they hit the wire.

:func:`send` journals a signed transaction durably, broadcasts it once and tracks it to a
final state. :func:`reconcile` runs on restart: for every open journal entry it asks the
chain, rebroadcasts the *same bytes* when the node lost them, and never builds or signs
anything new, so a crash can delay a payment but never make it twice.
:func:`send_intent` is the loop an executor runs around a signer, including the one case
where signing again is safe (a Solana blockhash expired and the old signature is absent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from chains.base import (
    ChainAdapter,
    Intent,
    NonceTooLow,
    TxExpired,
    TxId,
    TxStatus,
    UnsignedTx,
)
from chains.journal import JournalEntry, TxJournal, store_entry
from config.errors import (
    ChainError,
    ChainTimeout,
    InsufficientFunds,
    RpcUnreachable,
    TransactionReverted,
)

logger = logging.getLogger(__name__)

Signer = Callable[[UnsignedTx], Awaitable[bytes]]
"""Signs an unsigned transaction and returns the raw signed bytes (wallets' job)."""


async def send(
    adapter: ChainAdapter,
    store: TxJournal,
    tx: UnsignedTx,
    signed: bytes,
    *,
    timeout: float = 60,
    poll: float = 0.2,
    replaces: str | None = None,
) -> TxStatus:
    """Journal `signed`, broadcast it once, and track it until final or failed.

    If the endpoint fails during the broadcast the entry is left 'unknown' and
    :class:`~config.errors.RpcUnreachable` says so: :func:`reconcile` settles it later
    by asking the chain, never by signing again.
    """
    tx_id = adapter.tx_id(signed)
    store.record(adapter.chain.name, tx, tx_id, signed, replaces=replaces)
    await _broadcast(adapter, store, tx_id, signed)
    return await track(adapter, store, store_entry(store, tx_id), timeout=timeout, poll=poll)


async def _broadcast(adapter: ChainAdapter, store: TxJournal, tx_id: TxId, raw: bytes) -> None:
    try:
        await adapter.broadcast(raw)
    except RpcUnreachable as exc:
        store.mark(tx_id, "unknown", str(exc))
        raise RpcUnreachable(
            f"{exc}; transaction {tx_id} may or may not have been sent: it is journaled and "
            "`reconcile` will settle it against the chain (it will not be sent twice)"
        ) from exc
    except NonceTooLow:
        await _settle_nonce_too_low(adapter, store, tx_id)
        return
    except TxExpired:
        # The node does not know the blockhash (expired, or the node lags behind).
        # Whether the bytes can still land is decided by `track` against the last
        # valid block height, never here.
        return
    except (TransactionReverted, InsufficientFunds) as exc:
        store.mark(tx_id, "failed", str(exc))
        raise
    store.mark(tx_id, "broadcast")


async def _settle_nonce_too_low(adapter: ChainAdapter, store: TxJournal, tx_id: TxId) -> None:
    # The nonce is used: either by these very bytes (already mined) or by another tx.
    status = await adapter.status(tx_id)
    if status.state in ("pending", "included", "final", "failed"):
        store.mark(tx_id, "broadcast")
        return
    store.mark(tx_id, "replaced", "its nonce was used by another transaction")
    raise NonceTooLow(
        f"{adapter.chain.name}: nonce of {tx_id} was used by another transaction; "
        "it will never land (not sent again)"
    )


async def track(
    adapter: ChainAdapter,
    store: TxJournal,
    entry: JournalEntry,
    *,
    timeout: float = 60,
    poll: float = 0.2,
    resend_every: float = 2.0,
) -> TxStatus:
    """Follow `entry` to final or failed, resending the same bytes when the node lost them."""
    deadline = time.monotonic() + timeout
    tx_id, last_send = TxId(entry.tx_id), time.monotonic()
    while True:
        status = await adapter.status(tx_id)
        if status.state in ("final", "failed"):
            store.mark(tx_id, status.state, status.reason)
            return status
        if status.state in ("pending", "dropped") and entry.expires_at_height is not None:
            await _check_expiry(adapter, store, entry)
        resend = status.state == "dropped" or (
            entry.expires_at_height is not None and time.monotonic() - last_send > resend_every
        )
        if resend and status.state != "included":
            await _broadcast(adapter, store, tx_id, entry.raw)
            last_send = time.monotonic()
        if time.monotonic() > deadline:
            raise ChainTimeout(
                f"{adapter.chain.name}: {tx_id} is {status.state} after "
                f"{timeout:g}s; it stays journaled and `reconcile` will follow it"
            )
        await asyncio.sleep(poll)


async def _check_expiry(adapter: ChainAdapter, store: TxJournal, entry: JournalEntry) -> None:
    assert entry.expires_at_height is not None
    if await adapter.height() <= entry.expires_at_height:
        return
    # Past the last valid height: one more look, since it may have landed just before.
    status = await adapter.status(TxId(entry.tx_id))
    if status.state in ("pending", "dropped"):
        store.mark(entry.tx_id, "expired", "blockhash expired and the signature is absent")
        raise TxExpired(
            f"{adapter.chain.name}: {entry.tx_id} expired at block height "
            f"{entry.expires_at_height} and is not on chain; it is safe to sign anew",
            signature=entry.tx_id,
            signature_absent=True,
        )


async def reconcile(
    adapter: ChainAdapter,
    store: TxJournal,
    *,
    timeout: float = 60,
    poll: float = 0.2,
    senders: frozenset[str] | None = None,
) -> list[TxStatus | ChainError]:
    """Settle every open journal entry of this chain (of `senders` only, if given: a
    cluster daemon that won an agent settles that agent's); returns each outcome."""
    outcomes: list[TxStatus | ChainError] = []
    for entry in store.open_entries(adapter.chain.name):
        if senders is not None and entry.sender not in senders:
            continue
        try:
            if entry.status == "signed":  # crashed between journal and broadcast
                await _broadcast(adapter, store, TxId(entry.tx_id), entry.raw)
            outcomes.append(await track(adapter, store, entry, timeout=timeout, poll=poll))
        except ChainError as exc:
            outcomes.append(exc)
    return outcomes


async def resend_unsent(adapter: ChainAdapter, store: TxJournal) -> int:
    """Broadcast once every entry of this chain journaled but never sent (a crash between
    journal and broadcast); returns how many. Run before building anything new after a
    restart: a new EVM transaction takes the next nonce and would wait behind the unsent
    one until whoever owns it gets round to it. Tracking is left to the owners."""
    sent = 0
    for entry in store.open_entries(adapter.chain.name):
        if entry.status != "signed":
            continue
        try:
            await _broadcast(adapter, store, TxId(entry.tx_id), entry.raw)
            sent += 1
        except ChainError as exc:  # settled (marked) by _broadcast, or left to tracking
            logger.warning("%s: resending %s failed: %s", adapter.chain.name, entry.tx_id, exc)
    return sent


async def send_intent(
    adapter: ChainAdapter,
    store: TxJournal,
    intent: Intent,
    sender: str,
    sign: Signer,
    *,
    attempts: int = 3,
    timeout: float = 60,
    poll: float = 0.2,
) -> TxStatus:
    """Build, sign, journal, send and track `intent`.

    It signs again only after :class:`~chains.base.TxExpired` with
    ``signature_absent=True``: the old transaction provably can never land.
    """
    for _ in range(attempts - 1):
        try:
            return await _send_once(
                adapter, store, intent, sender, sign, timeout=timeout, poll=poll
            )
        except TxExpired as exc:
            if not exc.signature_absent:
                raise
    return await _send_once(adapter, store, intent, sender, sign, timeout=timeout, poll=poll)


async def _send_once(
    adapter: ChainAdapter,
    store: TxJournal,
    intent: Intent,
    sender: str,
    sign: Signer,
    *,
    timeout: float,
    poll: float,
) -> TxStatus:
    unsigned = await adapter.build(intent, sender)
    signed = await sign(unsigned)
    return await send(adapter, store, unsigned, signed, timeout=timeout, poll=poll)
