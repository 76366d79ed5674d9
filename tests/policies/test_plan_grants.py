"""Claims and refunds of escrow plans: authorized only for plans whose lock was."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from config.errors import PolicyViolation
from policies import Authorized, Denied, PolicyEngine
from policies.testing import FakeClock, make_action, make_deployment, make_evidence

POLICIES: list[dict[str, Any]] = [
    {"KillSwitch": {}},
    {"SpendLimit": {"per_transaction": {"ETH": "1"}}},
]
CLAIM = hashlib.sha256(b"a claim transaction").digest()


def _engine(store, clock: FakeClock) -> PolicyEngine:
    return PolicyEngine(make_deployment(POLICIES, agents=("payer", "other")), store, clock=clock)


async def _lock(engine: PolicyEngine, plan_id: str, amount: str) -> object:
    action = make_action(kind="swap_leg", plan_id=plan_id, amount=amount)
    ctx = engine.context("payer", plan_id=plan_id, evidence=make_evidence())
    return await engine.evaluate(action, ctx)


async def test_settlement_follows_an_authorized_lock_across_restarts(store, clock) -> None:
    engine = _engine(store, clock)
    assert isinstance(await _lock(engine, "swap-1", "0.5"), Authorized)
    authorization = engine.authorize_settlement("payer", "swap-1", CLAIM)
    assert authorization.digest == CLAIM
    engine.verifier.check(authorization, agent="payer", digest=CLAIM)
    restarted = _engine(store, clock)
    assert restarted.authorize_settlement("payer", "swap-1", CLAIM).digest == CLAIM


async def test_no_settlement_without_an_authorized_lock(store, clock) -> None:
    engine = _engine(store, clock)
    assert isinstance(await _lock(engine, "swap-2", "5"), Denied)  # over the spend limit
    with pytest.raises(PolicyViolation, match="no authorized escrow lock"):
        engine.authorize_settlement("payer", "swap-2", CLAIM)
    with pytest.raises(PolicyViolation, match="no authorized escrow lock"):
        engine.authorize_settlement("payer", "never-locked", CLAIM)
    assert isinstance(await _lock(engine, "swap-3", "0.1"), Authorized)
    with pytest.raises(PolicyViolation, match="no authorized escrow lock"):
        engine.authorize_settlement("other", "swap-3", CLAIM)  # another agent's plan
    transfer = make_action(plan_id="swap-4")
    ctx = engine.context("payer", plan_id="swap-4", evidence=make_evidence())
    assert isinstance(await engine.evaluate(transfer, ctx), Authorized)
    with pytest.raises(PolicyViolation, match="no authorized escrow lock"):
        engine.authorize_settlement("payer", "swap-4", CLAIM)  # a transfer is no lock
