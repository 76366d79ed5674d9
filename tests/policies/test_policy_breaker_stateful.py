"""The confidence breaker against a model of its specification, driven by a fake clock,
with execution outcomes and restarts (the store is reopened)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from config.store import open_store
from policies import Authorized, Denied, PolicyEngine, ProposedAction
from policies.builtin.breaker import ConfidenceBreaker
from policies.testing import FakeClock, make_action, make_deployment, make_evidence
from tests.policies._policy_helpers import fresh_store_url

MIN, OPEN_BELOW, MAX_LOW, MAX_FAILURES = Decimal("0.6"), Decimal("0.3"), 3, 2
LOW_WINDOW, COOLDOWN = timedelta(hours=1), timedelta(minutes=5)


def policies(probes: int) -> list[dict[str, object]]:
    return [
        {
            "ConfidenceBreaker": {
                "min_confidence": str(MIN),
                "open_below": str(OPEN_BELOW),
                "max_low_plans": MAX_LOW,
                "low_window": "1h",
                "max_failures": MAX_FAILURES,
                "cooldown": "5m",
                "probes": probes,
                "probe_fraction": "1",
            }
        }
    ]


@dataclass
class Model:
    """The specification, written independently of the implementation."""

    probes: int
    state: str = "closed"
    opened_at: datetime | None = None
    granted: int = 0
    succeeded: int = 0
    failures: int = 0

    def __post_init__(self) -> None:
        self.low: list[tuple[datetime, str]] = []
        self.probe_digests: set[bytes] = set()

    def open(self, now: datetime) -> None:
        self.state, self.opened_at = "open", now
        self.granted = self.succeeded = 0
        self.probe_digests.clear()

    def close(self) -> None:
        self.state, self.failures, self.low = "closed", 0, []
        self.granted = self.succeeded = 0

    def evaluate(self, score: Decimal, plan: str, digest: bytes, now: datetime) -> bool:
        if self.state == "open":
            assert self.opened_at is not None
            if now < self.opened_at + COOLDOWN:
                return False
            self.state, self.granted, self.succeeded = "half_open", 0, 0
        if score < OPEN_BELOW:
            self.open(now)
            return False
        if score < MIN:
            self.low = [(t, p) for t, p in self.low if t > now - LOW_WINDOW]
            if plan not in {p for _, p in self.low}:
                self.low.append((now, plan))
            if len(self.low) >= MAX_LOW:
                self.open(now)
            return False
        if self.state == "half_open":
            if self.granted >= self.probes:
                return False
            self.granted += 1
            self.probe_digests.add(digest)
        return True

    def executed(self, digest: bytes) -> None:
        self.failures = 0
        if digest in self.probe_digests:
            self.probe_digests.discard(digest)
            self.succeeded += 1
            if self.succeeded >= self.probes:
                self.close()

    def failed(self, digest: bytes, now: datetime) -> None:
        self.failures += 1
        probe = digest in self.probe_digests
        if probe or (self.state == "closed" and self.failures >= MAX_FAILURES):
            self.open(now)

    def restarted(self, now: datetime) -> None:
        self.probe_digests.clear()
        if self.state == "half_open" and self.granted:
            self.open(now)


class BreakerMachine(RuleBasedStateMachine):
    @initialize(probes=st.integers(1, 3))
    def start(self, probes: int) -> None:
        self.dir = tempfile.mkdtemp()
        self.url = fresh_store_url(self.dir)
        self.clock = FakeClock()
        # One loop per run: asyncio.run per step would start a fresh executor thread.
        self.loop = asyncio.new_event_loop()
        self.deployment = make_deployment(policies(probes))
        self.model = Model(probes)
        self.pending: list[ProposedAction] = []
        self.serial = 0
        self._open()

    def _open(self) -> None:
        self.store = open_store(self.url)
        self.engine = PolicyEngine(self.deployment, self.store, clock=self.clock)

    def teardown(self) -> None:
        if hasattr(self, "loop"):
            self.loop.close()
        if hasattr(self, "store"):
            self.store.dispose()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _ctx(self, score: Decimal = Decimal("0.9"), plan: str = "p"):
        return self.engine.context("payer", plan_id=plan, evidence=make_evidence(score))

    @rule(
        score=st.sampled_from(["0.1", "0.35", "0.5", "0.7", "0.95"]),
        same_plan=st.booleans(),
        burst=st.integers(1, 4),
    )
    def evaluate(self, score: str, same_plan: bool, burst: int) -> None:
        for _ in range(burst):
            self._evaluate_one(score, same_plan)

    def _evaluate_one(self, score: str, same_plan: bool) -> None:
        self.serial += 1
        plan = "repeat" if same_plan else f"plan-{self.serial}"
        action = make_action(plan_id=plan, amount="0.01", digest=self.serial.to_bytes(32, "big"))
        evidence_score = make_evidence(score).score
        outcome = self.loop.run_until_complete(
            self.engine.evaluate(action, self._ctx(Decimal(score), plan))
        )
        expected = self.model.evaluate(evidence_score, plan, action.digest, self.clock.now())
        assert isinstance(outcome, Authorized) == expected, (outcome, self.model)
        if expected:
            self.pending.append(action)
        else:
            assert isinstance(outcome, Denied)

    @precondition(lambda self: bool(getattr(self, "pending", None)))
    @rule(data=st.data(), success=st.booleans())
    def finish(self, data: st.DataObject, success: bool) -> None:
        action = data.draw(st.sampled_from(self.pending))
        self.pending.remove(action)
        if success:
            self.loop.run_until_complete(self.engine.executed(action, self._ctx()))
            self.model.executed(action.digest)
        else:
            self.loop.run_until_complete(self.engine.failed(action, self._ctx(), "reverted"))
            self.model.failed(action.digest, self.clock.now())

    @rule(seconds=st.sampled_from([1, 60, 299, 300, 301, 3600, 300, 301]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def restart(self) -> None:
        self.store.dispose()
        self._open()
        self.pending.clear()
        self.model.restarted(self.clock.now())

    @invariant()
    def same_state(self) -> None:
        if not hasattr(self, "engine"):
            return
        (breaker,) = self.engine.policies("payer")
        assert isinstance(breaker, ConfidenceBreaker)
        assert breaker.state.state == self.model.state
        assert breaker.state.probes_granted == self.model.granted


BreakerMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
# About 25 s: enough examples to find an extra half-open probe (checked by mutation).
TestBreakerFollowsItsSpecification = pytest.mark.slow(BreakerMachine.TestCase)
