"""SwapRate: a swap leg passes only at or above its pair's floor (exact Decimal, no
division), an unpriced pair is denied unless allowed, and anything that is not a swap
passes. The screen gives the same answer as the evaluation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from config.errors import ConfigError
from policies import Authorized, Denied, PolicyEngine, ProposedAction
from policies.actions import Intent, Receives
from policies.testing import make_action, make_deployment, make_evidence

FLOOR = {"SwapRate": {"floors": [{"give": "ETH", "take": "SOL", "at_least": "19.6"}]}}


def _leg(eth: str, sol: str | None, **fields: Any) -> ProposedAction:
    back = Receives(chain="solana-local", asset="SOL", amount=Decimal(sol)) if sol else None
    return make_action(kind="swap_leg", amount=eth, receives=back, **fields)


async def _judge(engine: PolicyEngine, action: ProposedAction) -> Authorized | Denied:
    ctx = engine.context("payer", plan_id=action.plan_id, evidence=make_evidence())
    outcome = await engine.evaluate(action, ctx)
    assert isinstance(outcome, Authorized | Denied)
    return outcome


def _intent(action: ProposedAction) -> Intent:
    fields = ("agent", "kind", "chain", "asset", "amount", "recipient", "receives")
    return Intent(**{name: getattr(action, name) for name in fields})


async def test_a_swap_below_the_floor_is_denied_and_one_at_it_passes() -> None:
    engine = PolicyEngine(make_deployment([FLOOR]))
    below = _leg("0.5", "9.7")
    denied = await _judge(engine, below)
    assert isinstance(denied, Denied)
    assert denied.reason == "rate 19.4 SOL per ETH is below the floor 19.6"
    assert engine.screen(_intent(below)) == f"SwapRate: {denied.reason}"
    # Negative control: exactly at the floor, and above it, pass; so does the screen.
    at_floor = _leg("0.5", "9.8")
    assert isinstance(await _judge(engine, at_floor), Authorized)
    assert engine.screen(_intent(at_floor)) is None
    assert isinstance(await _judge(engine, _leg("0.2", "4.1")), Authorized)
    # One wei under the floor is under it: the comparison is exact.
    assert isinstance(await _judge(engine, _leg("0.5", "9.799999999")), Denied)


async def test_an_unpriced_pair_is_denied_unless_allowed_and_non_swaps_pass() -> None:
    engine = PolicyEngine(make_deployment([FLOOR]))
    other = make_action(
        kind="swap_leg",
        chain="solana-local",
        asset="SOL",
        amount="10",
        receives=Receives(chain="evm-local", asset="ETH", amount=Decimal("0.5")),
    )
    denied = await _judge(engine, other)
    assert isinstance(denied, Denied)
    assert "no rate floor for ETH per SOL" in denied.reason
    relaxed = {"SwapRate": {**FLOOR["SwapRate"], "unlisted": "allow"}}
    assert isinstance(await _judge(PolicyEngine(make_deployment([relaxed])), other), Authorized)
    # A transfer, and a leg with nothing in return (a multi-chain payment's), pass.
    assert isinstance(await _judge(engine, make_action()), Authorized)
    assert isinstance(await _judge(engine, _leg("0.5", None)), Authorized)


def test_a_floor_naming_an_unknown_asset_is_a_config_error() -> None:
    bad = {"SwapRate": {"floors": [{"give": "ETH", "take": "DOGE", "at_least": "1"}]}}
    with pytest.raises(ConfigError, match="asset 'DOGE' is not in the deployment's assets"):
        PolicyEngine(make_deployment([bad]))
    with pytest.raises(ConfigError, match="floors"):
        PolicyEngine(make_deployment([{"SwapRate": {"floors": []}}]))
