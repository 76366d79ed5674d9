"""Approvals are bound to the exact transaction and expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from policies import Authorized, Denied, PolicyEngine, Queued
from policies.approvals import ApprovalError, decide, list_requests
from policies.testing import FakeClock, make_action, make_deployment, make_evidence

POLICIES = [{"HumanApproval": {"above_usd": "500", "expires": "1h"}}]
BIG = {"amount": "0.5"}  # $1500 at $3000/ETH


def _engine(store, clock: FakeClock) -> PolicyEngine:
    return PolicyEngine(make_deployment(POLICIES), store, clock=clock)


async def _queue(engine: PolicyEngine, **fields: object) -> Queued:
    outcome = await engine.evaluate(make_action(**{**BIG, **fields}), _ctx(engine))
    assert isinstance(outcome, Queued)
    assert outcome.approval_id is not None
    return outcome


def _ctx(engine: PolicyEngine):
    return engine.context("payer", plan_id="plan-1", evidence=make_evidence())


async def test_small_actions_pass_and_big_ones_queue_once(store, clock) -> None:
    engine = _engine(store, clock)
    assert isinstance(await engine.evaluate(make_action(), _ctx(engine)), Authorized)
    first = await _queue(engine)
    again = await _queue(engine)
    assert again.approval_id == first.approval_id
    assert [r.id for r in list_requests(store, "pending")] == [first.approval_id]


async def test_an_approval_authorizes_exactly_that_transaction_once(store, clock) -> None:
    engine = _engine(store, clock)
    queued = await _queue(engine)
    assert queued.approval_id is not None
    decide(store, queued.approval_id, approve=True, now=clock.now())
    outcome = await engine.evaluate(make_action(**BIG), _ctx(engine))
    assert isinstance(outcome, Authorized)
    assert outcome.approval_id == queued.approval_id
    assert isinstance(await engine.evaluate(make_action(**BIG), _ctx(engine)), Queued)


@pytest.mark.parametrize(
    "change",
    [
        {"amount": "0.51"},
        {"amount_base_units": 500_000_000_000_000_001, "digest": b"\x00" * 32},
        {"digest": b"\x07" * 32},
        {"plan_id": "plan-2"},
        {"recipient_address": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"},
        {"kind": "swap_leg"},
        {"chain": "solana-local", "asset": "SOL", "amount": "20"},
    ],
)
async def test_an_approval_does_not_authorize_a_transaction_differing_in_any_field(
    store, clock, change
) -> None:
    engine = _engine(store, clock)
    queued = await _queue(engine, digest=b"\x01" * 32)
    assert queued.approval_id is not None
    decide(store, queued.approval_id, approve=True, now=clock.now())
    fields = {**BIG, "digest": b"\x01" * 32, **change}
    if "amount_base_units" in change:
        fields["amount"] = "0.500000000000000001"
    outcome = await engine.evaluate(make_action(**fields), _ctx(engine))
    assert not isinstance(outcome, Authorized)


async def test_an_expired_approval_authorizes_nothing(store, clock) -> None:
    engine = _engine(store, clock)
    queued = await _queue(engine)
    assert queued.approval_id is not None
    decide(store, queued.approval_id, approve=True, now=clock.now())
    clock.advance(timedelta(hours=1))
    outcome = await engine.evaluate(make_action(**BIG), _ctx(engine))
    assert isinstance(outcome, Queued)
    assert outcome.approval_id != queued.approval_id


async def test_an_expired_request_cannot_be_approved(store, clock) -> None:
    engine = _engine(store, clock)
    queued = await _queue(engine)
    assert queued.approval_id is not None
    with pytest.raises(ApprovalError, match="expired"):
        decide(store, queued.approval_id, approve=True, now=clock.now() + timedelta(hours=2))


async def test_a_rejected_request_authorizes_nothing_and_cannot_be_redecided(store, clock) -> None:
    engine = _engine(store, clock)
    queued = await _queue(engine)
    assert queued.approval_id is not None
    decide(store, queued.approval_id, approve=False, now=clock.now())
    with pytest.raises(ApprovalError, match="already rejected"):
        decide(store, queued.approval_id, approve=True, now=clock.now())
    outcome = await engine.evaluate(make_action(**BIG), _ctx(engine))
    assert isinstance(outcome, Queued)


async def test_an_approval_does_not_override_a_deny(store, clock) -> None:
    policies: list[dict[str, Any]] = [
        *POLICIES,
        {"SpendLimit": {"per_transaction": {"ETH": "0.1"}}},
    ]
    engine = PolicyEngine(make_deployment(policies), store, clock=clock)
    outcome = await engine.evaluate(make_action(**BIG), _ctx(engine))
    assert isinstance(outcome, Denied)
    assert list_requests(store) == []
