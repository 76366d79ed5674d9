"""Prometheus metrics of one daemon, in a registry of its own (two runtimes in one
process, as in tests, never share counters).

Counters are fed at the one place the numbers are produced, through a narrow hook the
console's wiring (`agents/app/console.py`) sets: the runtime calls
:meth:`ConsoleMetrics.observe_tick` after each tick with the tick's report, every chain
adapter's retry layer calls :meth:`observe_rpc_error` for each failed read, and the
audit log calls :meth:`observe_audit_commit` for each entry it stored. Stored state
(breakers, pending approvals, cross-chain plans) is read at scrape time through the
same tables `status` reads, so it is never stale, agrees with the store by construction
and costs nothing between scrapes; confirmation latency is read from the transaction
journal the same way, but only what became final since the previous scrape.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from agents.agent import TickReport
from chains.atomic.store import PlanStore
from chains.base import error_kind
from chains.journal import TxJournal
from config.errors import ChainError
from policies import control
from policies.approvals import list_requests

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BREAKER_STATES = ("closed", "open", "half_open")
CONFIRMATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
AUDIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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
        self._console_metrics(r)
        self.rpc_errors = Counter(
            "covenant_rpc_errors",
            "Failed chain reads (each attempt), by chain and kind (unreachable, ...).",
            ["chain", "kind"],
            registry=r,
        )
        self.audit_commit_seconds = Histogram(
            "covenant_audit_commit_seconds",
            "Seconds from signing an audit entry to the group commit that stored it.",
            buckets=AUDIT_BUCKETS,
            registry=r,
        )
        r.register(_StoredState(store, list(agents)))

    def _console_metrics(self, r: CollectorRegistry) -> None:
        self.console_actions = Counter(
            "covenant_console_actions",
            "Operator actions taken in the console.",
            ["action"],
            registry=r,
        )
        self.login_failures = Counter(
            "covenant_console_login_failures",
            "Logins refused (unknown or revoked token), by client address.",
            ["source"],
            registry=r,
        )

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

    def observe_rpc_error(self, chain: str, error: ChainError) -> None:
        """Count one failed read of `chain` (an adapter's `rpc_error_hook`)."""
        self.rpc_errors.labels(chain, error_kind(error)).inc()

    def observe_audit_commit(self, seconds: float) -> None:
        """Time one stored audit entry (one of the audit log's `commit_hooks`)."""
        self.audit_commit_seconds.observe(seconds)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)


class _StoredState(Collector):
    """Breaker state per agent, pending approvals and cross-chain plans by state, read
    from the store at scrape time."""

    def __init__(self, store: Engine, agents: list[str]) -> None:
        self._store, self._agents = store, agents
        self._confirmations = _Confirmations(store)

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
        return [breaker, pending, plans, self._confirmations.family()]

    def describe(self) -> Iterable[Metric]:
        # Described without a store read, so registering does not query the database.
        return []


class _Confirmations:
    """Confirmation latency per chain, read incrementally: each scrape reads only what
    the journal made final since the previous one (the first, all of it), so a scrape
    costs what happened since, not the journal's whole history."""

    def __init__(self, store: Engine) -> None:
        self._journal = TxJournal(store)
        self._mark: datetime | None = None
        self._at_mark: set[str] = set()  # read already, final at exactly `_mark`
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}

    def family(self) -> HistogramMetricFamily:
        for confirmed in self._journal.confirmed_since(self._mark):
            if confirmed.at == self._mark and confirmed.tx_id in self._at_mark:
                continue
            if confirmed.at != self._mark:
                self._mark, self._at_mark = confirmed.at, set()
            self._at_mark.add(confirmed.tx_id)
            self._observe(confirmed.chain, confirmed.seconds)
        family = HistogramMetricFamily(
            "covenant_confirmation_latency_seconds",
            "Seconds from a transaction's broadcast to its confirmation (final), by chain.",
            labels=["chain"],
        )
        for chain, counts in sorted(self._buckets.items()):
            buckets = [
                (str(le), float(n)) for le, n in zip(CONFIRMATION_BUCKETS, counts[:-1], strict=True)
            ]
            buckets.append(("+Inf", float(counts[-1])))
            family.add_metric([chain], buckets, sum_value=self._sums[chain])
        return family

    def _observe(self, chain: str, seconds: float) -> None:
        counts = self._buckets.setdefault(chain, [0] * (len(CONFIRMATION_BUCKETS) + 1))
        for index, le in enumerate(CONFIRMATION_BUCKETS):
            counts[index] += seconds <= le
        counts[-1] += 1
        self._sums[chain] = self._sums.get(chain, 0.0) + seconds
