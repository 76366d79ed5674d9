"""`/metrics`, parsed with prometheus-client's own parser, shows what the audit log
shows; `/healthz` and `/readyz` answer for the daemon, its store and its chains."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents import audit
from chains.atomic.store import PlanStore
from config.loader import load_deployment
from config.store import open_store
from policies import control
from policies.approvals import list_requests
from tests.console.conftest import DemoDaemon

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
AGENTS = ("payer", "maker", "taker")


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _from_audit(store: Any) -> tuple[dict[str, int], Counter[tuple[str, str]]]:
    """Tick entries per agent, and action outcomes per (agent, state), from the log."""
    ticks: dict[str, int] = {}
    outcomes: Counter[tuple[str, str]] = Counter()
    for agent in AGENTS:
        records = [r for r in audit.entries(store, agent) if "plan_id" in r.body]
        ticks[agent] = len(records)
        outcomes.update((agent, a["state"]) for r in records for a in r.body["actions"])
    return ticks, outcomes


def _counted(metrics: dict[Any, float]) -> tuple[dict[str, int], Counter[tuple[str, str]]]:
    ticks = {
        agent: int(metrics.get(("covenant_ticks_total", (("agent", agent), ("outcome", "ok"))), 0))
        for agent in AGENTS
    }
    outcomes: Counter[tuple[str, str]] = Counter()
    for (name, labels), value in metrics.items():
        if name == "covenant_decisions_total":
            label = dict(labels)
            outcomes[(label["agent"], label["verdict"])] = int(value)
    return ticks, outcomes


def test_metrics_show_the_counts_the_audit_log_shows(demo_daemon: DemoDaemon) -> None:
    store = open_store(load_deployment(demo_daemon.file).store.url or "")
    try:
        # Wait for the maker and taker to have ticked a few times (each tick is an entry).
        deadline = time.monotonic() + 120
        while min(_from_audit(store)[0][a] for a in ("maker", "taker")) < 3:
            assert time.monotonic() < deadline, "the demo agents did not tick"
            time.sleep(0.5)
        # Agents keep ticking: read log, metrics, log until no tick ended in between.
        for _ in range(200):
            before, metrics, after = _from_audit(store), _scrape(demo_daemon.url), None
            after = _from_audit(store)
            if before == after and _counted(metrics) == before:
                break
            time.sleep(0.1)
        assert _counted(metrics) == before == after
        assert sum(before[0].values()) >= 6

        pending = Counter(r.agent for r in list_requests(store, "pending"))
        for agent in AGENTS:
            assert metrics[("covenant_approvals_pending", (("agent", agent),))] == pending.get(
                agent, 0
            )
        stored = {row.agent: row.state for row in control.breakers(store)}
        for agent in AGENTS:
            state = stored.get(agent, "closed")
            labels = (("agent", agent), ("state", state))
            assert metrics[("covenant_breaker_state", labels)] == 1.0
        assert metrics[("covenant_tick_duration_seconds_count", (("agent", "maker"),))] >= 3
        plans = Counter(plan.state for plan in PlanStore(store).plans())
        shown = {
            dict(labels)["state"]: int(value)
            for (name, labels), value in _scrape(demo_daemon.url).items()
            if name == "covenant_cross_chain_plans"
        }
        assert shown == dict(plans)
    finally:
        store.dispose()


def test_health_and_readiness(demo_daemon: DemoDaemon) -> None:
    assert httpx.get(f"{demo_daemon.url}/healthz").text == "ok"
    ready = httpx.get(f"{demo_daemon.url}/readyz").json()
    assert ready["ready"] is True
    assert set(ready["checks"]) == {
        "store",
        "chain arbitrum-local",
        "chain base-local",
        "chain solana-local",
    }
