"""Run independent two-daemon cases side by side. Each case has its own chains, ports,
stores and daemons, and spends most of its time waiting on deadlines and schedules, so
running them in parallel keeps the suite's wall time down without sharing anything.
Each runs in a forked process of its own: opening a store runs Alembic, whose context
is process-global, so two threads opening stores at once would collide."""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor


def concurrently(cases: Mapping[str, Callable[[], None]], workers: int) -> None:
    """Run every case (a picklable callable), at most `workers` at once; AssertionError
    naming each case that failed, with its traceback."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {name: pool.submit(_outcome, case) for name, case in cases.items()}
        failed = {name: future.result() for name, future in futures.items()}
    report = [f"{name}:\n{error[-4000:]}" for name, error in failed.items() if error]
    assert not report, f"{len(report)} of {len(cases)} cases failed:\n\n" + "\n\n".join(report)


def _outcome(case: Callable[[], None]) -> str | None:
    """None if `case` passed, else its traceback (as text: not every error pickles)."""
    try:
        case()
    except BaseException:
        return traceback.format_exc()
    return None
