"""The one group committer (config/group_commit.py), on SQLite and PostgreSQL.

Semantics under test: a batch is one transaction, and a request's future resolves only
after that transaction committed. Without a key, a failed transaction fails every
request in it and stores none of them. With a key, the batch is retried as one
transaction per key: only the failing key's requests fail (and its requests still
waiting, with the dependent error); the other keys' rows are stored. Shutdown
(`aclose`) settles everything queued and awaits the writer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from config.group_commit import GroupCommitter

metadata = sa.MetaData()
notes = sa.Table(
    "gc_notes",
    metadata,
    sa.Column("key", sa.String(16), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
)

Note = tuple[str, int]
"""A request: (key, number); a negative number makes its write fail."""


class Failed(Exception):
    """What the committer hands the callers of a failed request."""


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = sa.create_engine(store_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


class Recorder:
    """A write function that records each transaction's requests and fails on a
    negative number (inside the transaction, after writing the rows before it)."""

    def __init__(self) -> None:
        self.transactions: list[list[Note]] = []

    def __call__(self, connection: Connection, requests: Sequence[Note]) -> None:
        self.transactions.append(list(requests))
        for key, n in requests:
            connection.execute(notes.insert().values(key=key, n=n))
            if n < 0:
                raise ValueError(f"note {n} refused")


def describe(error: Exception, requests: Sequence[Note]) -> Exception:
    return Failed(f"{len(requests)} requests failed: {error}")


def stored(engine: Engine) -> list[Note]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(notes.c.key, notes.c.n).order_by(notes.c.n))
        return [(row.key, row.n) for row in rows]


def keyed(
    engine: Engine, write: Callable[[Connection, Sequence[Note]], None]
) -> GroupCommitter[Note]:
    return GroupCommitter(
        engine,
        write,
        describe=describe,
        key=lambda note: note[0],
        dependent_error=lambda note: Failed(f"note {note[1]} depended on a failed one"),
    )


async def submit_while_held(
    committer: GroupCommitter[Note], requests: Sequence[Note]
) -> list[object]:
    """Submit `requests` while the writer is held, so they form one batch."""
    with committer.write_lock:
        futures = [committer.submit(request) for request in requests]
        await asyncio.sleep(0.05)
    return await asyncio.gather(*futures, return_exceptions=True)


async def test_waiting_requests_share_one_transaction(engine: Engine) -> None:
    write = Recorder()
    committer = GroupCommitter(engine, write, describe=describe)
    await committer.submit(("a", 0))
    results = await submit_while_held(committer, [("a", n) for n in range(1, 21)])
    assert results == [None] * 20
    assert write.transactions == [[("a", 0)], [("a", n) for n in range(1, 21)]]
    assert len(stored(engine)) == 21
    await committer.aclose()


async def test_a_future_resolves_only_once_its_rows_are_visible_to_others(
    engine: Engine,
) -> None:
    write = Recorder()
    committer = GroupCommitter(engine, write, describe=describe)
    seen_at_resolution: list[int] = []
    futures = [committer.submit(("a", n)) for n in range(5)]
    for future in futures:
        future.add_done_callback(lambda _: seen_at_resolution.append(len(stored(engine))))
    await asyncio.gather(*futures)
    assert seen_at_resolution == [5] * 5


async def test_negative_control_rows_are_invisible_before_the_commit(engine: Engine) -> None:
    """The probe above can fail: inside the transaction another connection does not see
    the batch yet, so seeing every row at resolution means the commit came first."""
    seen_inside: list[int] = []

    def write_then_probe(connection: Connection, requests: Sequence[Note]) -> None:
        Recorder()(connection, requests)
        seen_inside.append(len(stored(engine)))

    committer = GroupCommitter(engine, write_then_probe, describe=describe)
    await asyncio.gather(*(committer.submit(("a", n)) for n in range(3)))
    assert seen_inside == [0]
    assert len(stored(engine)) == 3


async def test_without_a_key_one_failure_fails_and_rolls_back_the_whole_batch(
    engine: Engine,
) -> None:
    write = Recorder()
    committer = GroupCommitter(engine, write, describe=describe)
    results = await submit_while_held(committer, [("a", 1), ("b", -2), ("c", 3)])
    assert all(isinstance(result, Failed) for result in results)
    assert "3 requests failed: note -2 refused" in str(results[0])
    assert isinstance(results[0], Failed)
    assert isinstance(results[0].__cause__, ValueError)
    assert stored(engine) == []
    await committer.submit(("a", 4))  # the committer goes on after a failure
    assert stored(engine) == [("a", 4)]


async def test_with_a_key_a_failure_fails_only_its_key_and_what_waits_on_it(
    engine: Engine,
) -> None:
    write = Recorder()
    committer = keyed(engine, write)
    with committer.write_lock:
        first = [committer.submit(note) for note in [("a", 1), ("b", -2), ("b", 3), ("c", 4)]]
        await asyncio.sleep(0.05)  # the writer has taken these four and waits for the lock
        later = [committer.submit(note) for note in [("b", 5), ("c", 6)]]
    results = await asyncio.gather(*first, *later, return_exceptions=True)
    assert results[0] is None
    assert results[3] is None
    assert results[5] is None
    assert [str(r) for r in results[1:3]] == ["2 requests failed: note -2 refused"] * 2
    assert str(results[4]) == "note 5 depended on a failed one"
    assert stored(engine) == [("a", 1), ("c", 4), ("c", 6)]
    # One attempt for the batch, then one transaction per key in order of appearance.
    assert write.transactions[1:4] == [[("a", 1)], [("b", -2), ("b", 3)], [("c", 4)]]
    await committer.submit(("b", 7))  # submitted after the failure: written again
    assert ("b", 7) in stored(engine)


async def test_every_transaction_runs_the_checks_first(engine: Engine) -> None:
    calls: list[str] = []
    allowed = True

    def fence(connection: Connection) -> None:
        calls.append("check")
        if not allowed:
            raise RuntimeError("fenced")

    committer = GroupCommitter(engine, Recorder(), describe=describe, checks=[fence])
    await committer.submit(("a", 1))
    allowed = False
    with pytest.raises(Failed, match="fenced"):
        await committer.submit(("a", 2))
    with pytest.raises(Failed, match="fenced"):
        committer.commit_now(("a", 3))
    assert calls == ["check"] * 3
    assert stored(engine) == [("a", 1)]


async def test_an_admission_refuses_single_requests_and_the_rest_are_written(
    engine: Engine,
) -> None:
    """An admission runs inside the transaction and sees what is already stored there;
    a refused request fails alone with the admission's error (here: a running total
    of the table's `n` may not pass 10)."""

    def at_most_ten(connection: Connection, requests: Sequence[Note]) -> list[Exception | None]:
        total = connection.execute(sa.select(sa.func.coalesce(sa.func.sum(notes.c.n), 0)))
        room = 10 - int(total.scalar_one())
        answers: list[Exception | None] = []
        for _, n in requests:
            answers.append(None if n <= room else Failed(f"note {n} does not fit in {room}"))
            room -= n if n <= room else 0
        return answers

    write = Recorder()
    committer = GroupCommitter(engine, write, describe=describe)
    committer.admissions.append(at_most_ten)
    await committer.submit(("a", 4))
    results = await submit_while_held(committer, [("a", 5), ("b", 3), ("c", 1)])
    assert results[0] is None
    assert str(results[1]) == "note 3 does not fit in 1"
    assert results[2] is None
    assert stored(engine) == [("c", 1), ("a", 4), ("a", 5)]
    assert write.transactions[-1] == [("a", 5), ("c", 1)]  # the refused one never written


async def test_commit_now_writes_what_waits_first_in_the_same_transaction(
    engine: Engine,
) -> None:
    write = Recorder()
    committer = GroupCommitter(engine, write, describe=describe)
    waiting = [committer.submit(("a", n)) for n in range(3)]
    committer.commit_now(("a", 3))
    assert write.transactions == [[("a", 0), ("a", 1), ("a", 2), ("a", 3)]]
    assert all(future.done() for future in waiting)
    await committer.aclose()
    assert len(write.transactions) == 1  # the writer found them written


async def test_commit_now_raises_its_own_error(engine: Engine) -> None:
    committer = keyed(engine, Recorder())
    waiting = committer.submit(("a", 1))
    with pytest.raises(Failed, match="note -2 refused"):
        committer.commit_now(("b", -2))
    await waiting
    assert stored(engine) == [("a", 1)]


async def test_aclose_drains_the_queue_and_awaits_the_writer(engine: Engine) -> None:
    committer = GroupCommitter(engine, Recorder(), describe=describe)
    futures = [committer.submit(("a", n)) for n in range(50)]
    await asyncio.sleep(0)
    await committer.aclose()
    assert committer.writer is not None
    assert committer.writer.done()
    assert all(future.done() for future in futures)
    assert committer.waiting == 0
    assert len(stored(engine)) == 50


async def test_leaving_the_context_closes_the_committer(engine: Engine) -> None:
    async with GroupCommitter(engine, Recorder(), describe=describe) as committer:
        futures = [committer.submit(("a", n)) for n in range(5)]
    assert committer.writer is not None
    assert committer.writer.done()
    assert all(future.done() for future in futures)


async def test_a_cancelled_caller_does_not_withdraw_its_write(engine: Engine) -> None:
    committer = GroupCommitter(engine, Recorder(), describe=describe)
    with committer.write_lock:
        cancelled = committer.submit(("a", 1))
        kept = committer.submit(("a", 2))
        cancelled.cancel()
    await kept
    await committer.aclose()
    assert stored(engine) == [("a", 1), ("a", 2)]


def test_a_key_needs_a_dependent_error(engine: Engine) -> None:
    with pytest.raises(ValueError, match="go together"):
        GroupCommitter(engine, Recorder(), describe=describe, key=lambda note: note[0])


async def commit_now_behind_a_failing_batch(
    engine: Engine, forget_callers: bool = False
) -> tuple[object, object, object]:
    """A synchronous write of key b (from another thread) waits for the lock while the
    writer's batch of b fails; returns the outcomes of the failing request and of it."""
    release = threading.Event()
    write = Recorder()

    def slow_write(connection: Connection, requests: Sequence[Note]) -> None:
        release.wait(5)
        write(connection, requests)

    committer = keyed(engine, slow_write)
    if forget_callers:
        committer._calling = Forgets()  # type: ignore[assignment]
    failing = committer.submit(("b", -1))
    await asyncio.sleep(0.05)  # the writer thread holds the lock in slow_write
    behind = asyncio.ensure_future(asyncio.to_thread(committer.commit_now, ("b", 2)))
    other_key = asyncio.ensure_future(asyncio.to_thread(committer.commit_now, ("c", 3)))
    await asyncio.sleep(0.1)  # both threads now wait for the lock
    release.set()
    outcomes = await asyncio.gather(failing, behind, other_key, return_exceptions=True)
    await committer.submit(("b", 4))  # after the failure settled, b writes again
    return outcomes


class Forgets(set[object]):
    """Stands in for the committer's set of waiting synchronous callers and keeps
    none of them: what the dependency rule would be without that set."""

    def add(self, element: object) -> None:
        pass


async def test_a_write_behind_a_failing_batch_of_its_key_is_not_stored(
    engine: Engine,
) -> None:
    failing, behind, other_key = await commit_now_behind_a_failing_batch(engine)
    assert "note -1 refused" in str(failing)
    assert str(behind) == "note 2 depended on a failed one"
    assert other_key is None
    assert stored(engine) == [("c", 3), ("b", 4)]


async def test_negative_control_without_the_dependency_rule_it_would_be_stored(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race above is real: let every request through and (b, 2), built on the failed
    (b, -1), lands in the store."""
    monkeypatch.setattr(GroupCommitter, "_without_dependents", lambda self, items: items)
    _, behind, _ = await commit_now_behind_a_failing_batch(engine, forget_callers=True)
    assert behind is None
    assert ("b", 2) in stored(engine)


class LateLock:
    """The committer's write lock, except that the thread named "late" announces it has
    reached the lock and then waits for `go` before taking it: this pins the order in
    which a synchronous write and the settling of a failure meet."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock, self.reached, self.go = lock, threading.Event(), threading.Event()

    def __enter__(self) -> None:
        if threading.current_thread().name == "late":
            self.reached.set()
            self.go.wait(5)
        self.lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.lock.release()


async def commit_now_reaching_the_lock_before_a_failure_settles(
    committer: GroupCommitter[Note], release: threading.Event
) -> object:
    """commit_now((b, 2)) is called while (b, -1) is being written, and takes the write
    lock only after that failure has settled; returns what commit_now raised (or None)."""
    late_lock = LateLock(committer.write_lock)
    committer.write_lock = late_lock  # type: ignore[assignment]
    outcome: list[object] = []

    def late() -> None:
        try:
            committer.commit_now(("b", 2))
            outcome.append(None)
        except Failed as error:
            outcome.append(error)

    failing = committer.submit(("b", -1))
    thread = threading.Thread(target=late, name="late")
    thread.start()
    await asyncio.to_thread(late_lock.reached.wait, 5)
    release.set()
    with pytest.raises(Failed, match="note -1 refused"):
        await failing  # resolved only after the failure settled
    late_lock.go.set()
    await asyncio.to_thread(thread.join, 5)
    return outcome[0]


def slow_keyed(engine: Engine) -> tuple[GroupCommitter[Note], threading.Event]:
    release = threading.Event()
    write = Recorder()

    def slow_write(connection: Connection, requests: Sequence[Note]) -> None:
        release.wait(5)
        write(connection, requests)

    return keyed(engine, slow_write), release


async def test_a_synchronous_write_called_before_a_failure_settled_is_not_stored(
    engine: Engine,
) -> None:
    committer, release = slow_keyed(engine)
    raised = await commit_now_reaching_the_lock_before_a_failure_settles(committer, release)
    assert str(raised) == "note 2 depended on a failed one"
    assert stored(engine) == []


async def test_negative_control_a_synchronous_write_not_registered_would_be_stored(
    engine: Engine,
) -> None:
    """Without commit_now registering its request before it waits for the lock, the
    settled failure cannot see it and (b, 2), built on the failed (b, -1), is stored."""

    committer, release = slow_keyed(engine)
    committer._calling = Forgets()  # type: ignore[assignment]
    raised = await commit_now_reaching_the_lock_before_a_failure_settles(committer, release)
    assert raised is None
    assert stored(engine) == [("b", 2)]
