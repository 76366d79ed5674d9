"""`/metrics`, parsed with prometheus-client's own parser, shows what the audit log, the
store and the transaction journal show; `/healthz` and `/readyz` answer for the daemon,
its store and its chains."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents import audit
from chains.atomic.store import PlanStore
from chains.journal import TxJournal
from config.loader import load_deployment
from config.store import open_store
from policies import control
from policies.approvals import list_requests
from tests.console._client import logged_in
from tests.console.conftest import DemoDaemon

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
AGENTS = ("payer", "maker", "taker")


Scraped = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(client: httpx.Client) -> Scraped:
    reply = client.get("/metrics")
    assert reply.status_code == 200, reply.text
    text = reply.text
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
        with logged_in(demo_daemon.url, demo_daemon.token) as client:
            _check_counts(store, client)
            _check_audit_commits(store, client)
            _check_confirmations(store, client)
            _check_no_rpc_errors(client)
    finally:
        store.dispose()


def _check_counts(store: Any, client: httpx.Client) -> None:
    """Ticks, decisions, approvals pending, breakers and plans as the store shows them."""
    # Wait for the maker and taker to have ticked a few times (each tick is an entry).
    deadline = time.monotonic() + 120
    while min(_from_audit(store)[0][a] for a in ("maker", "taker")) < 3:
        assert time.monotonic() < deadline, "the demo agents did not tick"
        time.sleep(0.5)
    # Agents keep ticking: read log, metrics, log until no tick ended in between.
    for _ in range(200):
        before, metrics, after = _from_audit(store), _scrape(client), None
        after = _from_audit(store)
        if before == after and _counted(metrics) == before:
            break
        time.sleep(0.1)
    assert _counted(metrics) == before == after
    assert sum(before[0].values()) >= 6

    pending = Counter(r.agent for r in list_requests(store, "pending"))
    for agent in AGENTS:
        assert metrics[("covenant_approvals_pending", (("agent", agent),))] == pending.get(agent, 0)
    stored = {row.agent: row.state for row in control.breakers(store)}
    for agent in AGENTS:
        state = stored.get(agent, "closed")
        labels = (("agent", agent), ("state", state))
        assert metrics[("covenant_breaker_state", labels)] == 1.0
    assert metrics[("covenant_tick_duration_seconds_count", (("agent", "maker"),))] >= 3
    plans = Counter(plan.state for plan in PlanStore(store).plans())
    shown = {
        dict(labels)["state"]: int(value)
        for (name, labels), value in _scrape(client).items()
        if name == "covenant_cross_chain_plans"
    }
    assert shown == dict(plans)


def _stable(read: Callable[[], object], client: httpx.Client) -> tuple[object, Scraped]:
    """`read()` and a scrape taken while `read()` did not change (agents keep ticking)."""
    for _ in range(200):
        before, metrics = read(), _scrape(client)
        if read() == before:
            return before, metrics
        time.sleep(0.1)
    raise AssertionError("the store never held still for a scrape")


def _check_audit_commits(store: Any, client: httpx.Client) -> None:
    """Every entry in every log (ticks, console actions, this test's login) was timed
    once by the audit log's group commit; every one of them was written by this daemon."""

    def entries() -> int:
        return sum(len(audit.entries(store, agent)) for agent in AGENTS)

    count, metrics = _stable(entries, client)
    assert count == metrics[("covenant_audit_commit_seconds_count", ())]
    assert metrics[("covenant_audit_commit_seconds_sum", ())] > 0


def _check_confirmations(store: Any, client: httpx.Client) -> None:
    """Confirmation latency per chain is what the journal's final entries took."""
    journal = TxJournal(store)
    deadline = time.monotonic() + 120
    while not journal.confirmation_seconds():
        assert time.monotonic() < deadline, "no transaction of the demo became final"
        time.sleep(0.5)
    found, metrics = _stable(journal.confirmation_seconds, client)
    assert isinstance(found, dict)
    for chain, seconds in found.items():
        labels = (("chain", chain),)
        assert metrics[("covenant_confirmation_latency_seconds_count", labels)] == len(seconds)
        shown = metrics[("covenant_confirmation_latency_seconds_sum", labels)]
        assert shown == pytest.approx(sum(seconds))
        inf = (("chain", chain), ("le", "+Inf"))
        assert metrics[("covenant_confirmation_latency_seconds_bucket", inf)] == len(seconds)
    shown_chains = {
        dict(labels)["chain"]
        for name, labels in metrics
        if name == "covenant_confirmation_latency_seconds_count"
    }
    assert shown_chains == set(found)


def _check_no_rpc_errors(client: httpx.Client) -> None:
    """Negative control of the closed-port test (test_console_hooks): every chain of the
    demo is up, so no read failed as unreachable."""
    unreachable = {
        labels: value
        for (name, labels), value in _scrape(client).items()
        if name == "covenant_rpc_errors_total" and dict(labels)["kind"] == "unreachable"
    }
    assert unreachable == {}


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
