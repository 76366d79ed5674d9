"""The engine: ordering, deny/queue/authorize, exceptions, minting only on allow."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest

from config.errors import SignerError
from policies import (
    ALLOW,
    Allow,
    Authorized,
    Decision,
    Denied,
    Deny,
    NeedsApproval,
    Policy,
    PolicyContext,
    PolicyEngine,
    ProposedAction,
    Queued,
)
from policies.testing import FakeClock, make_action, make_deployment, make_evidence


class Recorder(Policy):
    """Returns a fixed decision and records every call."""

    def __init__(self, decision: Decision) -> None:
        super().__init__()
        self.decision = decision
        self.calls: list[str] = []

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        self.calls.append("evaluate")
        return self.decision

    async def on_declined(self, action: ProposedAction, ctx: PolicyContext) -> None:
        self.calls.append("declined")


class Exploding(Policy):
    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        raise RuntimeError("boom")


def _engine(policies: list[Policy], store=None, clock=None) -> PolicyEngine:
    deployment = make_deployment()
    return PolicyEngine(deployment, store, clock=clock or FakeClock(), policies={"payer": policies})


def _ctx(engine: PolicyEngine) -> PolicyContext:
    return engine.context("payer", plan_id="plan-1", evidence=make_evidence())


async def test_all_allow_mints_an_authorization_the_verifier_accepts() -> None:
    engine = _engine([Recorder(ALLOW), Recorder(Allow())])
    action = make_action()
    outcome = await engine.evaluate(action, _ctx(engine))
    assert isinstance(outcome, Authorized)
    assert engine.signatures == 1
    engine.verifier.check(outcome.authorization, agent="payer", digest=action.digest)
    with pytest.raises(SignerError):
        engine.verifier.check(outcome.authorization, agent="payer", digest=b"\x01" * 32)


async def test_a_deny_stops_evaluation_and_undoes_earlier_reservations() -> None:
    first, denier, last = Recorder(ALLOW), Recorder(Deny(reason="no")), Recorder(ALLOW)
    engine = _engine([first, denier, last])
    outcome = await engine.evaluate(make_action(), _ctx(engine))
    assert outcome == Denied(reason="no", policy="Recorder")
    assert first.calls == ["evaluate", "declined"]
    assert last.calls == []
    assert engine.signatures == 0


async def test_deny_wins_over_needs_approval_and_nothing_is_minted() -> None:
    engine = _engine([Recorder(NeedsApproval(reason="big")), Recorder(Deny(reason="no"))])
    outcome = await engine.evaluate(make_action(), _ctx(engine))
    assert isinstance(outcome, Denied)
    assert engine.signatures == 0


async def test_needs_approval_queues_and_never_mints(store) -> None:
    engine = _engine([Recorder(NeedsApproval(reason="big")), Recorder(ALLOW)], store)
    outcome = await engine.evaluate(make_action(), _ctx(engine))
    assert isinstance(outcome, Queued)
    assert outcome.approval_id is not None
    assert engine.signatures == 0


async def test_a_policy_that_raises_is_a_deny_with_the_cause_logged(caplog) -> None:
    engine = _engine([Exploding()])
    with caplog.at_level(logging.ERROR, logger="covenant.policies"):
        outcome = await engine.evaluate(make_action(), _ctx(engine))
    assert isinstance(outcome, Denied)
    assert "RuntimeError: boom" in outcome.reason
    assert "boom" in caplog.text
    assert engine.signatures == 0


async def test_a_non_decision_return_value_is_a_deny() -> None:
    class Sloppy(Policy):
        async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
            return True  # type: ignore[return-value]

    outcome = await _engine([Sloppy()]).evaluate(make_action(), _ctx(_engine([Sloppy()])))
    assert isinstance(outcome, Denied)


async def test_an_agent_without_policies_gets_nothing_authorized() -> None:
    engine = _engine([])
    outcome = await engine.evaluate(make_action(), _ctx(engine))
    assert isinstance(outcome, Denied)
    assert "no policies" in outcome.reason


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"amount_base_units": 1}, "base units"),
        ({"asset": "SOL"}, "not defined on chain"),
        ({"agent": "ghost"}, "context"),
    ],
)
async def test_inconsistent_actions_are_denied_before_any_policy(fields, words) -> None:
    policy = Recorder(ALLOW)
    engine = _engine([policy])
    outcome = await engine.evaluate(make_action(**fields), _ctx(engine))
    assert isinstance(outcome, Denied)
    assert words in outcome.reason
    assert policy.calls == []


async def test_declined_actions_do_not_count_against_spend() -> None:
    engine = _engine([Recorder(Deny(reason="no"))])
    await engine.evaluate(make_action(amount="0.5"), _ctx(engine))
    day = timedelta(days=1)
    assert engine.ledger.window_total("payer", "ETH", engine.clock.now(), day) == Decimal(0)


async def test_a_denied_re_evaluation_releases_its_own_reservation_only() -> None:
    from policies.builtin.spend import SpendLimit, SpendLimitParams

    limit = SpendLimit(SpendLimitParams.model_validate({"per_day": {"ETH": "0.1"}}))
    engine = _engine([limit])
    digest = b"\x05" * 32
    first = await engine.evaluate(make_action(amount="0.06", digest=digest), _ctx(engine))
    again = await engine.evaluate(make_action(amount="0.05", digest=digest), _ctx(engine))
    assert isinstance(first, Authorized)
    assert isinstance(again, Denied)
    day = timedelta(days=1)
    assert engine.ledger.window_total("payer", "ETH", engine.clock.now(), day) == Decimal("0.06")


async def test_two_concurrent_evaluations_cannot_both_pass_a_limit(store) -> None:
    import asyncio

    from policies.builtin.spend import SpendLimit, SpendLimitParams

    limit = SpendLimit(SpendLimitParams.model_validate({"per_day": {"ETH": "0.1"}}))
    engine = _engine([limit], store)
    ctx = _ctx(engine)
    outcomes = await asyncio.gather(
        engine.evaluate(make_action(amount="0.06"), ctx),
        engine.evaluate(make_action(amount="0.07"), ctx),
    )
    assert sorted(o.verdict for o in outcomes) == ["authorized", "denied"]


async def test_another_engines_verifier_rejects_this_engines_authorization() -> None:
    first, second = _engine([Recorder(ALLOW)]), _engine([Recorder(ALLOW)])
    action = make_action()
    outcome = await first.evaluate(action, _ctx(first))
    assert isinstance(outcome, Authorized)
    with pytest.raises(SignerError, match="not signed by this runtime"):
        second.verifier.check(outcome.authorization, agent="payer", digest=action.digest)


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "sqlite"])
async def test_evaluations_that_finish_together_share_one_signature(durable, store) -> None:
    import asyncio

    engine = _engine([Recorder(ALLOW)], store if durable else None)
    ctx = _ctx(engine)
    actions = [make_action(digest=i.to_bytes(32, "big")) for i in range(1, 41)]
    outcomes = await asyncio.gather(*(engine.evaluate(a, ctx) for a in actions))
    assert all(isinstance(o, Authorized) for o in outcomes)
    assert engine.signatures < len(actions)  # batched: fewer signatures than actions
    for action, outcome in zip(actions, outcomes, strict=True):
        assert isinstance(outcome, Authorized)
        engine.verifier.check(outcome.authorization, agent="payer", digest=action.digest)
    crossed = outcomes[0].authorization  # type: ignore[union-attr]
    with pytest.raises(SignerError, match="is for digest"):
        engine.verifier.check(crossed, agent="payer", digest=actions[1].digest)


async def test_a_cancelled_evaluation_does_not_hold_up_the_batch() -> None:
    import asyncio

    engine = _engine([Recorder(ALLOW)])
    ctx = _ctx(engine)
    doomed = asyncio.ensure_future(engine.evaluate(make_action(digest=b"\x01" * 32), ctx))
    kept = asyncio.ensure_future(engine.evaluate(make_action(digest=b"\x02" * 32), ctx))
    await asyncio.sleep(0)  # both now wait for the batch's turn
    doomed.cancel()
    outcome = await kept
    assert isinstance(outcome, Authorized)
    assert doomed.cancelled()


async def test_a_failing_commit_hook_still_wakes_the_commit_and_mints_again(store) -> None:
    engine = _engine([Recorder(ALLOW)], store)
    hook = engine._store.on_commit  # type: ignore[union-attr]
    calls = []

    def failing_once(tokens):
        calls.append(len(tokens))
        if len(calls) == 1:
            raise RuntimeError("hook failed")
        hook(tokens)  # type: ignore[misc]

    engine._store.on_commit = failing_once  # type: ignore[union-attr]
    action = make_action()
    outcome = await engine.evaluate(action, _ctx(engine))
    assert isinstance(outcome, Authorized)
    engine.verifier.check(outcome.authorization, agent="payer", digest=action.digest)
    assert calls == [1]  # the fallback minted through the turn's batch, not the hook
