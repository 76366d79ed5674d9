"""The daemon's clock: one APScheduler job per agent, at most one tick in flight each.

APScheduler 3 (asyncio) fires each agent's job from its interval or cron schedule, with
jitter so many agents on one schedule do not hit the RPCs in the same second. A tick that
is still running when the next one is due is not started twice (``max_instances=1``);
ticks missed while the daemon was busy or asleep collapse into one (``coalesce``).
Shutdown stops new ticks first, then waits for the ones in flight.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.models import AgentConfig, IntervalSchedule
from config.types import crontab_fields

log = logging.getLogger(__name__)

TickFunction = Callable[[], Awaitable[None]]

MISFIRE_GRACE = timedelta(minutes=5)
"""A tick later than this (daemon asleep, event loop blocked) is skipped, not run late."""


def trigger_for(agent: AgentConfig) -> BaseTrigger:
    """The APScheduler trigger of `agent`'s schedule, jitter included."""
    schedule = agent.schedule
    jitter = int(schedule.jitter) if schedule.jitter else None
    if isinstance(schedule, IntervalSchedule):
        return IntervalTrigger(seconds=float(schedule.every), jitter=jitter, timezone=UTC)
    return CronTrigger(**crontab_fields(schedule.cron), jitter=jitter, timezone=UTC)


@dataclass
class AgentJob:
    """One agent's schedule and tick, with counters for status and `--ticks`."""

    agent: AgentConfig
    tick: TickFunction
    ticks_done: int = 0
    ticks_failed: int = 0
    running: bool = False
    last_error: str | None = None
    last_tick_at: datetime | None = None


class AgentScheduler:
    """Runs every agent's tick on its schedule until stopped, or until each has ticked
    `max_ticks` times."""

    def __init__(
        self, jobs: list[AgentJob], *, max_ticks: int | None = None, paused: bool = False
    ) -> None:
        """With `paused` (cluster mode) every agent starts paused: :meth:`resume` starts
        the ones this daemon holds, :meth:`pause` stops those it lost, so a daemon fires
        only its own agents' jobs, not every agent's to skip most of them."""
        self.jobs = {job.agent.name: job for job in jobs}
        self.max_ticks = max_ticks
        self._paused = paused
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._stopped = asyncio.Event()
        self._in_flight: set[asyncio.Future[None]] = set()

    def next_tick(self, agent: str) -> datetime | None:
        """When `agent` ticks next, or None if it is not scheduled."""
        job = self._scheduler.get_job(agent)
        return job.next_run_time if job is not None else None

    async def run(self) -> None:
        """Schedule every agent and block until :meth:`stop` or the tick budget is spent."""
        now = datetime.now(UTC)
        for name, job in self.jobs.items():
            # With a tick budget (demo, tests) start at once rather than after one
            # period. (Passing next_run_time=None would add the job paused.)
            start: dict[str, datetime | None] = {}
            if self.max_ticks is not None:
                start = {"next_run_time": now}
            if self._paused:
                start = {"next_run_time": None}  # added paused
            self._scheduler.add_job(
                self._run_tick,
                trigger_for(job.agent),
                args=[name],
                id=name,
                name=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(MISFIRE_GRACE.total_seconds()),
                **start,
            )
        self._install_signal_handlers()
        self._scheduler.start()
        try:
            await self._stopped.wait()
        finally:
            await self._shutdown()

    def pause(self, agent: str) -> None:
        """Fire no more ticks of `agent` (one in flight finishes)."""
        if self._scheduler.get_job(agent) is not None:
            self._scheduler.pause_job(agent)

    def resume(self, agent: str) -> None:
        """Tick `agent` on its schedule again."""
        if self._scheduler.get_job(agent) is not None:
            self._scheduler.resume_job(agent)

    def stop(self) -> None:
        """Ask the daemon to stop: no new ticks; ticks in flight finish."""
        self._stopped.set()

    async def _run_tick(self, name: str) -> None:
        job = self.jobs[name]
        if self._stopped.is_set() or self._budget_spent(job):
            return
        current = asyncio.ensure_future(self._guarded(job))
        self._in_flight.add(current)
        current.add_done_callback(self._in_flight.discard)
        # Shielded: stopping the scheduler cancels its job coroutines, but a tick in
        # flight must finish (or reach its own journaled state), never be cut mid-step.
        await asyncio.shield(current)
        if self.max_ticks is not None and all(map(self._budget_spent, self.jobs.values())):
            self.stop()

    async def _guarded(self, job: AgentJob) -> None:
        # An agent's failure is recorded and the agent ticks again next time; it never
        # takes the daemon or other agents down.
        job.running = True
        job.last_tick_at = datetime.now(UTC)
        try:
            await job.tick()
        except Exception as exc:
            job.ticks_failed += 1
            job.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("tick of agent %s failed", job.agent.name)
        finally:
            job.ticks_done += 1
            job.running = False

    def _budget_spent(self, job: AgentJob) -> bool:
        return self.max_ticks is not None and job.ticks_done >= self.max_ticks

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                return

    def _on_signal(self, signum: int) -> None:
        log.warning(
            "received %s: finishing ticks in flight, then stopping", signal.Signals(signum).name
        )
        self.stop()

    async def _shutdown(self) -> None:
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._scheduler.shutdown(wait=False)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.remove_signal_handler(signum)
            except (NotImplementedError, RuntimeError):
                break
