"""The breaker's rules one by one, with a fake clock and a real store."""

from __future__ import annotations

from decimal import Decimal

from policies import Authorized, Denied, Outcome, PolicyContext, PolicyEngine
from policies.builtin.breaker import ConfidenceBreaker
from policies.testing import FakeClock, make_action, make_deployment, make_evidence

PARAMS = {
    "min_confidence": "0.6",
    "open_below": "0.3",
    "max_low_plans": 3,
    "low_window": "1h",
    "max_failures": 2,
    "cooldown": "5m",
    "probes": 2,
    "probe_fraction": "0.5",
    "anomaly_factor": "10",
    "anomaly_min_history": 3,
}


class Harness:
    def __init__(self, store, clock: FakeClock, **overrides: object) -> None:
        self.clock = clock
        self.deployment = make_deployment([{"ConfidenceBreaker": {**PARAMS, **overrides}}])
        self.store = store
        self.reopen()
        self.serial = 0

    def reopen(self) -> None:
        self.engine = PolicyEngine(self.deployment, self.store, clock=self.clock)

    @property
    def breaker(self) -> ConfidenceBreaker:
        (policy,) = self.engine.policies("payer")
        assert isinstance(policy, ConfidenceBreaker)
        return policy

    def current(self) -> str:
        return self.breaker.state.state

    def ctx(self, score: str = "0.9", plan: str | None = None):
        self.serial += 1
        return self.engine.context(
            "payer", plan_id=plan or f"plan-{self.serial}", evidence=make_evidence(score)
        )

    async def run(self, score: str = "0.9", amount: str = "0.01", plan: str | None = None):
        ctx = self.ctx(score, plan)
        action = make_action(amount=amount, plan_id=ctx.plan_id)
        return action, ctx, await self.engine.evaluate(action, ctx)


async def test_one_plan_far_below_the_threshold_opens_it(store, clock) -> None:
    h = Harness(store, clock)
    _, _, outcome = await h.run(score="0.2")
    assert isinstance(outcome, Denied)
    assert h.current() == "open"
    _, _, outcome = await h.run(score="0.99")
    assert isinstance(outcome, Denied)
    assert "breakers reset payer" in outcome.reason


async def test_n_low_plans_within_the_window_open_it_and_repeats_count_once(store, clock) -> None:
    h = Harness(store, clock)
    for _ in range(3):
        await h.run(score="0.5", plan="same")
    assert h.current() == "closed"
    await h.run(score="0.5")
    clock.advance(minutes=61)  # both low plans so far age out of the window
    await h.run(score="0.5")
    await h.run(score="0.5")
    assert h.current() == "closed"
    await h.run(score="0.5")
    assert h.current() == "open"


async def test_consecutive_failures_open_it_and_a_success_resets_the_count(store, clock) -> None:
    h = Harness(store, clock)
    first, ctx, _ = await h.run()
    await h.engine.failed(first, ctx, "reverted")
    second, ctx, _ = await h.run()
    await h.engine.executed(second, ctx)
    third, ctx, _ = await h.run()
    await h.engine.failed(third, ctx, "reverted")
    assert h.current() == "closed"
    fourth, ctx, _ = await h.run()
    await h.engine.failed(fourth, ctx, "reverted")
    assert h.current() == "open"
    assert "consecutive execution failures" in h.breaker.state.reason


async def test_an_anomalous_amount_opens_it(store, clock) -> None:
    h = Harness(store, clock)
    for _ in range(3):
        action, ctx, _ = await h.run(amount="0.01")
        await h.engine.executed(action, ctx)
    _, _, outcome = await h.run(amount="0.2")
    assert isinstance(outcome, Denied)
    assert "anomalous size" in outcome.reason
    assert h.current() == "open"


async def test_half_open_allows_exactly_k_small_probes_then_closes(store, clock) -> None:
    h = Harness(store, clock)
    for _ in range(3):
        action, ctx, _ = await h.run(amount="0.01")
        await h.engine.executed(action, ctx)
    await h.run(score="0.1")
    clock.advance(minutes=4, seconds=59)
    assert isinstance((await h.run())[2], Denied)
    clock.advance(seconds=1)
    _, _, too_big = await h.run(amount="0.006")  # above half the typical 0.01
    assert isinstance(too_big, Denied)
    assert "probe may move at most" in too_big.reason
    probes = [await h.run(amount="0.005") for _ in range(2)]
    assert all(isinstance(outcome, Authorized) for _, _, outcome in probes)
    assert isinstance((await h.run(amount="0.005"))[2], Denied)
    for action, ctx, _ in probes:
        await h.engine.executed(action, ctx)
    assert h.current() == "closed"
    assert isinstance((await h.run(amount="0.01"))[2], Authorized)


async def test_a_failed_probe_reopens_with_a_fresh_cooldown(store, clock) -> None:
    h = Harness(store, clock)
    await h.run(score="0.1")
    clock.advance(minutes=5)
    probe, ctx, outcome = await h.run()
    assert isinstance(outcome, Authorized)
    await h.engine.failed(probe, ctx, "reverted")
    assert h.current() == "open"
    assert h.breaker.state.opened_at == clock.now()


async def test_state_survives_a_restart(store, clock) -> None:
    h = Harness(store, clock)
    await h.run(score="0.1")
    h.reopen()
    assert h.current() == "open"
    assert isinstance((await h.run())[2], Denied)
    clock.advance(minutes=5)
    assert isinstance((await h.run())[2], Authorized)
    h.reopen()  # a probe was in flight: its outcome is lost, so it counts as failed
    assert h.current() == "open"
    assert "restarted while probes were in flight" in h.breaker.state.reason


async def test_missing_evidence_is_a_deny(store, clock) -> None:
    h = Harness(store, clock)
    ctx = h.engine.context("payer", plan_id="plan-1", evidence=None)
    outcome = await h.engine.evaluate(make_action(), ctx)
    assert isinstance(outcome, Denied)
    assert "no confidence evidence" in outcome.reason


def test_self_reported_certainty_alone_cannot_pass_the_threshold() -> None:
    from policies import ConfidenceEvidence

    evidence = ConfidenceEvidence(self_reported=Decimal(1), sample_agreement=Decimal(0), samples=3)
    assert evidence.score < Decimal("0.6")


async def test_unrelated_control_changes_keep_memory_and_a_reset_closes(store, clock) -> None:
    from datetime import timedelta

    from policies import control

    deployment = make_deployment([{"KillSwitch": {}}, {"ConfidenceBreaker": PARAMS}])
    engine = PolicyEngine(deployment, store, clock=clock, control_poll=timedelta(0))
    ctx = engine.context("payer", plan_id="low-1", evidence=make_evidence("0.5"))
    await engine.evaluate(make_action(plan_id="low-1"), ctx)
    breaker = engine.policies("payer")[1]
    assert isinstance(breaker, ConfidenceBreaker)
    assert len(breaker.state.low_plans) == 1
    control.halt(store, "payer", "test", clock.now())
    control.resume(store, "payer")
    await engine.evaluate(
        make_action(plan_id="p2"), engine.context("payer", plan_id="p2", evidence=make_evidence())
    )
    assert len(breaker.state.low_plans) == 1  # a halt/resume is not a reset
    await engine.evaluate(
        make_action(plan_id="p3"),
        engine.context("payer", plan_id="p3", evidence=make_evidence("0.1")),
    )
    assert breaker.state.state == "open"
    assert control.reset_breaker(store, "payer", clock.now())
    outcome = await engine.evaluate(
        make_action(plan_id="p4"), engine.context("payer", plan_id="p4", evidence=make_evidence())
    )
    assert isinstance(outcome, Authorized)
    assert breaker.state.low_plans == type(breaker.state.low_plans)()


async def test_a_control_change_during_an_in_flight_probe_grants_no_extra_probe(
    store, clock
) -> None:
    import asyncio
    from datetime import timedelta

    from policies import control

    params = {**PARAMS, "probes": 1}
    deployment = make_deployment([{"ConfidenceBreaker": params}], agents=("payer", "other"))
    engine = PolicyEngine(deployment, store, clock=clock, control_poll=timedelta(0))

    def ctx(plan: str, score: str = "0.9") -> PolicyContext:
        return engine.context("payer", plan_id=plan, evidence=make_evidence(score))

    await engine.evaluate(make_action(plan_id="bad"), ctx("bad", "0.1"))
    clock.advance(minutes=5)

    async def halt_other_then_evaluate() -> Outcome:
        # Runs while the first probe waits for its commit: the control change makes the
        # engine reload, which must not forget the probe in flight.
        control.halt(store, "other", "unrelated", clock.now())
        return await engine.evaluate(make_action(plan_id="b"), ctx("b"))

    first, second = await asyncio.gather(
        engine.evaluate(make_action(plan_id="a"), ctx("a")), halt_other_then_evaluate()
    )
    assert isinstance(first, Authorized)
    assert isinstance(second, Denied)
    assert "probe(s) are in flight" in second.reason


async def test_empty_low_confidence_plans_count_toward_the_breaker(store, clock) -> None:
    # A malformed model reply becomes an empty plan: no action to deny, yet it counts.
    h = Harness(store, clock)
    for serial in range(3):
        await h.engine.plan_observed("payer", f"empty-{serial}", make_evidence("0.5"))
    assert h.current() == "open"
    h.reopen()  # persisted, like every breaker transition
    assert h.current() == "open"


async def test_a_confident_empty_plan_changes_nothing(store, clock) -> None:
    h = Harness(store, clock)
    for serial in range(5):
        await h.engine.plan_observed("payer", f"idle-{serial}", make_evidence("0.9"))
    assert h.current() == "closed"
