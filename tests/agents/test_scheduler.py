"""The daemon's scheduler: one tick in flight per agent, tick budgets, failures isolated,
graceful stop that waits for ticks in flight."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from agents.scheduler import AgentJob, AgentScheduler, trigger_for
from config.models import AgentConfig


def _agent(name: str, schedule: dict[str, str]) -> AgentConfig:
    return AgentConfig.model_validate(
        {"name": name, "schedule": schedule, "mandate": "m", "planner": "p", "chains": ["c"]}
    )


def test_triggers_follow_the_schedule() -> None:
    interval = trigger_for(_agent("a", {"every": "30s", "jitter": "2s"}))
    assert isinstance(interval, IntervalTrigger)
    assert interval.interval.total_seconds() == 30
    assert interval.jitter == 2
    cron = trigger_for(_agent("b", {"cron": "15 9 * * 1-5"}))
    assert isinstance(cron, CronTrigger)
    fire = cron.get_next_fire_time(None, datetime.fromisoformat("2026-11-27T10:00:00+00:00"))
    assert fire is not None
    assert fire.isoformat() == "2026-11-30T09:15:00+00:00"  # Friday after 9:15 -> Monday


async def test_tick_budget_stops_the_daemon_and_isolates_failures() -> None:
    calls: dict[str, int] = {"ok": 0, "bad": 0}

    async def ok() -> None:
        calls["ok"] += 1

    async def bad() -> None:
        calls["bad"] += 1
        raise RuntimeError("boom")

    jobs = [
        AgentJob(_agent("ok", {"every": "1s"}), ok),
        AgentJob(_agent("bad", {"every": "1s"}), bad),
    ]
    scheduler = AgentScheduler(jobs, max_ticks=2)
    await asyncio.wait_for(scheduler.run(), timeout=20)
    assert calls == {"ok": 2, "bad": 2}
    assert scheduler.jobs["bad"].ticks_failed == 2
    assert scheduler.jobs["bad"].last_error == "RuntimeError: boom"
    assert scheduler.jobs["ok"].ticks_failed == 0


async def test_one_tick_in_flight_per_agent_and_stop_waits_for_it() -> None:
    active = 0
    peak = 0
    finished = 0

    async def slow() -> None:
        nonlocal active, peak, finished
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(2.5)  # longer than the 1s interval
        active -= 1
        finished += 1

    scheduler = AgentScheduler([AgentJob(_agent("slow", {"every": "1s"}), slow)], max_ticks=None)
    runner = asyncio.create_task(scheduler.run())
    await asyncio.sleep(3.2)
    scheduler.stop()
    await asyncio.wait_for(runner, timeout=10)
    assert peak == 1
    assert active == 0, "stop returned while a tick was still running"
    assert finished >= 1


@pytest.mark.parametrize("schedule", [{"every": "1s"}, {"cron": "* * * * *"}])
def test_next_tick_is_known_once_running(schedule: dict[str, str]) -> None:
    async def scenario() -> datetime | None:
        async def tick() -> None:
            await asyncio.sleep(0)

        scheduler = AgentScheduler([AgentJob(_agent("a", schedule), tick)])
        runner = asyncio.create_task(scheduler.run())
        await asyncio.sleep(0.2)
        nxt = scheduler.next_tick("a")
        scheduler.stop()
        await runner
        return nxt

    assert asyncio.run(scenario()) is not None
