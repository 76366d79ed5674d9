"""Group commit: the one writer that turns many callers' write requests into few
database transactions.

Callers hand a request to :meth:`GroupCommitter.submit` and await the future it returns.
One writer task takes every request waiting when it is free and writes them in one
transaction (one fsync for many callers), in a worker thread so the event loop keeps
running. The rules, which the audit log and the policy store both rely on:

* **Durable before answered.** A request's future resolves only after the transaction
  holding it has committed; if the transaction fails, the future raises (the error as
  the owner's `describe` words it), so no caller mistakes a lost write for a stored one.
* **In order.** Requests reach the store in the order they were submitted: batches are
  written one at a time under :attr:`GroupCommitter.write_lock`, and a synchronous
  :meth:`GroupCommitter.commit_now` first writes what is waiting (even a batch the
  writer has taken but not yet written), in the same transaction.
* **Checked in one place.** Every transaction runs the owner's `checks` first (the
  policy store's epoch fence): a check that raises fails the transaction like any
  other error. On an engine that carries a cluster fence (`config/fencing.py`) each
  request remembers the agents it was submitted for, and the transaction first asks
  the fence which of them this daemon still holds: the requests of the others fail with
  :class:`~config.fencing.Fenced`, unwritten, and the rest are written in the same
  transaction, under the lease locks the fence took.
* **Admitted one by one.** An owner's `admissions` run last, in the same transaction, and
  may refuse single requests (the policy store's deployment-wide spend limits in
  cluster mode): a refused request fails with the error it names, unwritten, and the
  others are written as if it had never been submitted.
* **Failure is as narrow as the owner says.** Without a `key`, a failed transaction
  fails every request in it: nothing of the batch is stored. With a `key` (the audit
  log's agent), the batch is written again as one transaction per key, in order of first
  appearance, so one key's failure fails only that key's requests of the batch. The
  requests of that key submitted before the failure is settled (before the owner's
  `failed` hook has run) fail too, unwritten, with `dependent_error`: they were built
  on what could not be stored (an audit entry chained on an unwritten one). Requests
  submitted after it are written as usual.
* **Owned.** The writer task belongs to this object: it starts with the first request,
  ends when nothing is waiting, and :meth:`GroupCommitter.aclose` (or leaving
  ``async with``) awaits it, so no write outlives the shutdown that closed its owner.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection, Engine

from config import fencing

RequestT = TypeVar("RequestT")

Check = Callable[[Connection], None]
"""Runs first in every transaction; raising fails the transaction."""

Admit = Callable[[Connection, Sequence[RequestT]], Sequence[Exception | None]]
"""Runs last in every transaction, on the requests about to be written: for each, None
to write it or the error it fails with, unwritten."""

logger = logging.getLogger("covenant.store")


@dataclass(eq=False, slots=True)
class _Waiting(Generic[RequestT]):
    request: RequestT
    future: asyncio.Future[None] | None
    error: Exception | None = None
    dependent: bool = False
    """Failed unwritten because an earlier request of its key failed."""
    agents: fencing.Writers = field(default_factory=fencing.current)
    """Whom the request writes for (the submitter's context), for the cluster fence."""


@dataclass(eq=False, slots=True)
class _Batch(Generic[RequestT]):
    items: list[_Waiting[RequestT]]
    written: bool = False
    settled: bool = False
    failed_keys: set[Hashable] = field(default_factory=set)


class GroupCommitter(Generic[RequestT]):
    """Writes submitted requests in group transactions on `engine` (see the module)."""

    def __init__(
        self,
        engine: Engine,
        write: Callable[[Connection, Sequence[RequestT]], None],
        *,
        describe: Callable[[Exception, Sequence[RequestT]], Exception],
        checks: Sequence[Check] = (),
        key: Callable[[RequestT], Hashable] | None = None,
        dependent_error: Callable[[RequestT], Exception] | None = None,
        committed: Callable[[Sequence[RequestT]], None] | None = None,
        failed: Callable[[Sequence[RequestT]], None] | None = None,
    ) -> None:
        if (key is None) != (dependent_error is None):
            raise ValueError("a key and a dependent_error go together")
        self.engine = engine
        self._write = write
        self._describe = describe
        self.checks = list(checks)
        """Per-transaction checks, run in order before the requests are written."""
        self.admissions: list[Admit[RequestT]] = []
        """Per-transaction admissions, run in order after the checks (see the module)."""
        self._key = key
        self._dependent_error = dependent_error
        self._committed = committed
        self._failed = failed
        self.write_lock = threading.Lock()
        """Held while a transaction is written (by the writer thread or commit_now)."""
        self._queue: list[_Waiting[RequestT]] = []
        self._queue_lock = threading.Lock()  # the queue is also taken from threads
        self._in_flight: _Batch[RequestT] | None = None
        self._poisoned: set[Hashable] = set()  # keys failed and not yet settled
        # commit_now requests waiting for the write lock: a failure settled meanwhile
        # fails them too (they were built before it), like the queue's requests.
        self._calling: set[_Waiting[RequestT]] = set()
        self._writer: asyncio.Task[None] | None = None

    @property
    def writer(self) -> asyncio.Task[None] | None:
        """The writer task, if one was ever started (done once the queue ran empty)."""
        return self._writer

    @property
    def waiting(self) -> int:
        """Requests submitted and not yet taken by a writer."""
        return len(self._queue)

    def submit(self, request: RequestT) -> asyncio.Future[None]:
        """Queue `request`; the future resolves once it is committed (or raises why not).

        Cancelling the future does not withdraw the request: it is written regardless.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._queue_lock:
            self._queue.append(_Waiting(request, future))
        writer = self._writer
        if writer is None or writer.done() or writer.get_loop() is not loop:
            self._writer = loop.create_task(self._run())
        return future

    def commit_now(self, request: RequestT) -> None:
        """Write `request` now, after and with everything waiting, in one transaction;
        raises its error if it was not stored. The owner's hooks run in the calling
        thread, so call it from the thread that owns the owner's state (the event loop's
        while requests are submitted)."""
        own: _Waiting[RequestT] = _Waiting(request, None)
        with self._queue_lock:
            self._calling.add(own)
        with self.write_lock:
            taken = self._in_flight
            earlier = taken.items if taken is not None and not taken.written else []
            batch = _Batch([*earlier, *self._take(), own])
            self._write_batch(batch)
            if taken is not None and earlier:
                taken.written = taken.settled = True
        self._settle(batch)
        if own.error is not None:
            raise own.error

    async def aclose(self) -> None:
        """Wait until every request submitted so far is settled and the writer ended."""
        writer = self._writer
        if writer is not None and writer.get_loop() is asyncio.get_running_loop():
            await asyncio.shield(writer)

    async def __aenter__(self) -> GroupCommitter[RequestT]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self) -> None:
        # Whatever is submitted while a batch is on disk forms the next batch.
        while self._queue:
            batch = _Batch(self._take())
            self._in_flight = batch
            try:
                await asyncio.to_thread(self._write_taken, batch)
            finally:
                self._in_flight = None
            if not batch.settled:
                self._settle(batch)

    def _take(self) -> list[_Waiting[RequestT]]:
        with self._queue_lock:
            taken, self._queue = self._queue, []
        return taken

    def _write_taken(self, batch: _Batch[RequestT]) -> None:
        with self.write_lock:
            if not batch.written:  # else commit_now wrote it first
                self._write_batch(batch)

    def _write_batch(self, batch: _Batch[RequestT]) -> None:
        batch.written = True
        items = self._without_dependents(batch.items)
        error = self._transaction(batch, items) if items else None
        if error is None:
            return
        groups = self._groups(items)
        if len(groups) < 2:
            self._mark_failed(batch, items, error)
            return
        for group in groups:
            group_error = self._transaction(batch, group)
            if group_error is not None:
                self._mark_failed(batch, group, group_error)

    def _without_dependents(self, items: list[_Waiting[RequestT]]) -> list[_Waiting[RequestT]]:
        """The items to write; those of a key whose failure is not settled yet (they were
        built on it) fail unwritten, as do those already failed that way while they
        waited. Checked and taken out of `_calling` under one lock, so a failure settled
        by another thread is seen either here or by `_fail_dependents`, never by neither."""
        with self._queue_lock:
            self._calling.difference_update(items)
            if self._key is None or self._dependent_error is None:
                return items
            kept = []
            for item in items:
                if item.dependent:
                    continue
                if self._key(item.request) in self._poisoned:
                    item.error, item.dependent = self._dependent_error(item.request), True
                else:
                    kept.append(item)
            return kept

    def _mark_failed(
        self, batch: _Batch[RequestT], items: list[_Waiting[RequestT]], error: Exception
    ) -> None:
        for item in items:
            item.error = error
        if self._key is not None:
            keys = {self._key(item.request) for item in items}
            batch.failed_keys |= keys
            with self._queue_lock:
                self._poisoned |= keys

    def _groups(self, items: list[_Waiting[RequestT]]) -> list[list[_Waiting[RequestT]]]:
        if self._key is None:
            return [items]
        groups: dict[Hashable, list[_Waiting[RequestT]]] = {}
        for item in items:
            groups.setdefault(self._key(item.request), []).append(item)
        return list(groups.values())

    def _transaction(
        self, batch: _Batch[RequestT], items: list[_Waiting[RequestT]]
    ) -> Exception | None:
        requests = [item.request for item in items]
        for item in items:  # a request refused in an earlier try of its batch is tried again
            item.error = None
        try:
            # The writer thread runs in the first submitter's context: who each request
            # writes for is its own `agents`, checked here, not that context's.
            with fencing.writing_for(), self.engine.begin() as connection:
                kept = self._unfenced(batch, connection, items)
                for check in self.checks:
                    check(connection)
                kept = self._admitted(batch, connection, kept)
                requests = [item.request for item in kept]
                if requests:
                    self._write(connection, requests)
        except Exception as exc:
            described = self._describe(exc, requests)
            if described is not exc and described.__cause__ is None:
                described.__cause__ = exc
            return described
        return None

    def _unfenced(
        self, batch: _Batch[RequestT], connection: Connection, items: list[_Waiting[RequestT]]
    ) -> list[_Waiting[RequestT]]:
        """The items to write: those of agents the engine's fence (if any) says this
        daemon still holds. The others fail now with the fence's error, unwritten."""
        fence = fencing.fence_of(self.engine)
        agents = {agent for item in items for agent in item.agents}
        if fence is None or not agents:
            return items
        epochs = fencing.held(connection, agents)
        kept = []
        for item in items:
            refused = set(item.agents) - fencing.admits(epochs, item.agents)
            if refused:
                self._mark_failed(batch, [item], fence.refusal(refused))
            else:
                kept.append(item)
        return kept

    def _admitted(
        self, batch: _Batch[RequestT], connection: Connection, items: list[_Waiting[RequestT]]
    ) -> list[_Waiting[RequestT]]:
        """The items every admission lets through; the others fail unwritten."""
        for admit in self.admissions:
            if not items:
                break
            errors = admit(connection, [item.request for item in items])
            for item, error in zip(items, errors, strict=True):
                if error is not None:
                    self._mark_failed(batch, [item], error)
            items = [item for item, error in zip(items, errors, strict=True) if error is None]
        return items

    def _settle(self, batch: _Batch[RequestT]) -> None:
        batch.settled = True
        failed = [item.request for item in batch.items if item.error and not item.dependent]
        if failed:
            self._hook(self._failed, failed)
        if batch.failed_keys:
            self._fail_dependents(batch.failed_keys)
        stored = [item.request for item in batch.items if item.error is None]
        if stored:
            self._hook(self._committed, stored)
        for item in batch.items:
            _resolve(item)

    def _fail_dependents(self, keys: set[Hashable]) -> None:
        """Fail what still waits on the keys that failed, then let those keys write again:
        whatever is submitted from now on was built after the owner's `failed` hook."""
        key, dependent_error = self._key, self._dependent_error
        if key is None or dependent_error is None:
            return
        with self._queue_lock:
            dependents = [item for item in self._queue if key(item.request) in keys]
            self._queue = [item for item in self._queue if key(item.request) not in keys]
            calling = [item for item in self._calling if key(item.request) in keys]
            self._calling.difference_update(calling)
            for item in (*dependents, *calling):
                item.error, item.dependent = dependent_error(item.request), True
            self._poisoned -= keys
        for item in dependents:
            _resolve(item)

    @staticmethod
    def _hook(hook: Callable[[Sequence[RequestT]], None] | None, requests: list[RequestT]) -> None:
        if hook is None:
            return
        try:
            hook(requests)
        except Exception:  # the callers must hear about their writes regardless
            logger.exception("a group commit hook raised")


def _resolve(item: _Waiting[RequestT]) -> None:
    """Settle the item's future, from whichever thread settles the batch."""
    future = item.future
    if future is None:
        return
    loop = future.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _set(future, item.error)
    elif not loop.is_closed():
        loop.call_soon_threadsafe(_set, future, item.error)


def _set(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():  # its caller was cancelled; the write stands regardless
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
