"""Prometheus metrics of one daemon, in a registry of its own (two runtimes in one
process, as in tests, never share counters).

Counters are fed at the one place the numbers are produced: the runtime calls
:meth:`ConsoleMetrics.observe_tick` after each tick with the tick's report. Gauges of
stored state (breakers, pending approvals) are read at scrape time through the same
functions `status` uses, so they are never stale and cost nothing between scrapes.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from agents.agent import TickReport
from chains.atomic.store import PlanStore
from policies import control
from policies.approvals import list_requests

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BREAKER_STATES = ("closed", "open", "half_open")


class ConsoleMetrics:
    """The daemon's metrics; `render()` is the body of `/metrics`."""

    def __init__(self, store: Engine, agents: Sequence[str]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ticks = Counter(
            "covenant_ticks", "Ticks finished, by outcome.", ["agent", "outcome"], registry=r
        )
        self.tick_seconds = Histogram(
            "covenant_tick_duration_seconds", "Wall time of one tick.", ["agent"], registry=r
        )
        self.decisions = Counter(
            "covenant_decisions",
            "What became of each planned action (executed, started, queued, denied, ...).",
            ["agent", "verdict"],
            registry=r,
        )
        self.denials = Counter(
            "covenant_denials",
            "Actions denied, by the policy that denied.",
            ["agent", "policy"],
            registry=r,
        )
        self.transactions = Counter(
            "covenant_transactions",
            "Proposed transactions by chain and what became of them.",
            ["chain", "state"],
            registry=r,
        )
        self._model_metrics(r)
        self.console_actions = Counter(
            "covenant_console_actions",
            "Operator actions taken in the console.",
            ["action"],
            registry=r,
        )
        r.register(_StoredState(store, list(agents)))

    def _model_metrics(self, r: CollectorRegistry) -> None:
        self.model_calls = Counter(
            "covenant_model_calls", "Model completions requested.", ["agent"], registry=r
        )
        self.model_tokens = Counter(
            "covenant_model_tokens",
            "Model tokens, prompt or completion.",
            ["agent", "kind"],
            registry=r,
        )
        self.model_seconds = Histogram(
            "covenant_model_latency_seconds",
            "Wall time of one plan (all samples).",
            ["agent"],
            registry=r,
        )

    def observe_tick(self, agent: str, report: TickReport | None, seconds: float) -> None:
        """Count one tick of `agent`; `report` is None when the tick raised."""
        self.tick_seconds.labels(agent).observe(seconds)
        self.ticks.labels(agent, "ok" if report is not None else "failed").inc()
        if report is None:
            return
        for result in report.results:
            self.decisions.labels(agent, result.state).inc()
            if result.state == "denied":
                self.denials.labels(agent, result.policy or "unknown").inc()
            if result.action is not None:
                self.transactions.labels(result.action.chain, result.state).inc()
        if report.model_calls:
            self.model_calls.labels(agent).inc(report.model_calls)
            self.model_tokens.labels(agent, "prompt").inc(report.prompt_tokens)
            self.model_tokens.labels(agent, "completion").inc(report.completion_tokens)
            self.model_seconds.labels(agent).observe(report.model_seconds)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)


class _StoredState(Collector):
    """Breaker state per agent, pending approvals and cross-chain plans by state, read
    from the store at scrape time."""

    def __init__(self, store: Engine, agents: list[str]) -> None:
        self._store, self._agents = store, agents

    def collect(self) -> Iterable[Metric]:
        breaker = GaugeMetricFamily(
            "covenant_breaker_state",
            "1 for the state each agent's confidence breaker is in.",
            labels=["agent", "state"],
        )
        stored = {row.agent: row.state for row in control.breakers(self._store)}
        for agent in self._agents:
            current = stored.get(agent, "closed")
            for state in sorted({*BREAKER_STATES, current}):
                breaker.add_metric([agent, state], 1.0 if state == current else 0.0)
        pending = GaugeMetricFamily(
            "covenant_approvals_pending", "Approval requests waiting.", labels=["agent"]
        )
        requests = list_requests(self._store, "pending")
        for agent in self._agents:
            pending.add_metric([agent], float(sum(r.agent == agent for r in requests)))
        plans = GaugeMetricFamily(
            "covenant_cross_chain_plans", "Cross-chain plans by state.", labels=["state"]
        )
        for state, count in sorted(Tally(p.state for p in PlanStore(self._store).plans()).items()):
            plans.add_metric([state], float(count))
        return [breaker, pending, plans]

    def describe(self) -> Iterable[Metric]:
        # Described without a store read, so registering does not query the database.
        return []
