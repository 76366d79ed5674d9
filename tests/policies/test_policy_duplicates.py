"""DuplicateGuard: a payment that repeats one authorized within the window is denied,
across restarts; a failed one may be retried; other policies' denials leave no trace."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine as SqlEngine

from config.errors import ConfigError
from policies import Authorized, Denied, PolicyContext, PolicyEngine, ProposedAction
from policies.testing import FakeClock, make_action, make_deployment, make_evidence

GUARD = {"DuplicateGuard": {"within": "1h"}}


def _engine(store: SqlEngine | None, clock: FakeClock, *policies: dict[str, Any]) -> PolicyEngine:
    return PolicyEngine(make_deployment([GUARD, *policies]), store, clock=clock)


def _invoice(tick: int, **fields) -> ProposedAction:
    # A new plan and a new transaction (nonce) each tick: a new digest, the same payment.
    return make_action(plan_id=f"tick-{tick}", digest=tick.to_bytes(32, "big"), **fields)


def _ctx(engine: PolicyEngine, action: ProposedAction) -> PolicyContext:
    return engine.context("payer", plan_id=action.plan_id, evidence=make_evidence())


async def _evaluate(engine: PolicyEngine, action: ProposedAction):
    return await engine.evaluate(action, _ctx(engine, action))


async def test_the_same_payment_on_the_next_tick_is_denied_until_the_window_passes(
    store: SqlEngine, clock: FakeClock
) -> None:
    engine = _engine(store, clock)
    first = await _evaluate(engine, _invoice(1))
    assert isinstance(first, Authorized)
    await engine.executed(_invoice(1), _ctx(engine, _invoice(1)))
    clock.advance(timedelta(minutes=30))
    again = await _evaluate(engine, _invoice(2))
    assert isinstance(again, Denied)
    assert again.policy == "DuplicateGuard"
    assert "0.05 ETH to acme-supplier on evm-local" in again.reason
    clock.advance(timedelta(minutes=31))
    assert isinstance(await _evaluate(engine, _invoice(3)), Authorized)


@pytest.mark.parametrize(
    "change",
    [
        {"amount": "0.06"},
        {"recipient_address": "0x" + "ab" * 20},
        {"chain": "solana-local", "asset": "SOL"},
    ],
    ids=["amount", "address", "chain"],
)
async def test_a_payment_that_differs_in_what_it_does_is_not_a_duplicate(
    change: dict[str, str], clock: FakeClock
) -> None:
    engine = _engine(None, clock)
    assert isinstance(await _evaluate(engine, _invoice(1)), Authorized)
    assert isinstance(await _evaluate(engine, _invoice(2, **change)), Authorized)


async def test_a_failed_payment_may_be_retried_and_a_restart_remembers_the_rest(
    store: SqlEngine, clock: FakeClock
) -> None:
    engine = _engine(store, clock)
    paid, failed = _invoice(1), _invoice(2, amount="0.07")
    assert isinstance(await _evaluate(engine, paid), Authorized)
    assert isinstance(await _evaluate(engine, failed), Authorized)
    await engine.executed(paid, _ctx(engine, paid))
    await engine.failed(failed, _ctx(engine, failed), "reverted")

    restarted = _engine(store, clock)
    assert isinstance(await _evaluate(restarted, _invoice(3)), Denied)  # paid: remembered
    retry = await _evaluate(restarted, _invoice(4, amount="0.07"))
    assert isinstance(retry, Authorized)  # failed: its row was deleted


async def test_a_failure_reported_after_a_restart_still_frees_the_payment(
    store: SqlEngine, clock: FakeClock
) -> None:
    engine = _engine(store, clock)
    sent = _invoice(1)
    assert isinstance(await _evaluate(engine, sent), Authorized)
    restarted = _engine(store, clock)  # e.g. the journal reconciles it as failed
    await restarted.failed(sent, _ctx(restarted, sent), "dropped from the mempool")
    assert isinstance(await _evaluate(restarted, _invoice(2)), Authorized)


async def test_a_payment_another_policy_denied_leaves_no_trace(
    store: SqlEngine, clock: FakeClock
) -> None:
    tiny_limit = {"SpendLimit": {"per_transaction": {"ETH": "0.01"}}}
    engine = _engine(store, clock, tiny_limit)
    denied = await _evaluate(engine, _invoice(1))
    assert isinstance(denied, Denied)
    assert denied.policy == "SpendLimit"
    relaxed = _engine(store, clock)  # the same store, without the limit
    assert isinstance(await _evaluate(relaxed, _invoice(2)), Authorized)


async def test_only_the_configured_kinds_are_compared(clock: FakeClock) -> None:
    guard = {"DuplicateGuard": {"within": "1h", "kinds": ["contract_call"]}}
    engine = PolicyEngine(make_deployment([guard]), None, clock=clock)
    assert isinstance(await _evaluate(engine, _invoice(1)), Authorized)
    assert isinstance(await _evaluate(engine, _invoice(2)), Authorized)


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(ConfigError, match="kinds"):
        PolicyEngine(make_deployment([{"DuplicateGuard": {"kinds": ["teleport"]}}]))


async def test_an_invoice_is_paid_once_by_its_task_across_restarts_and_edits(
    store: SqlEngine, clock: FakeClock
) -> None:
    engine = _engine(store, clock)
    paid = _invoice(1, task="inbox/inv-1")
    assert isinstance(await _evaluate(engine, paid), Authorized)
    await engine.executed(paid, _ctx(engine, paid))
    restarted = _engine(store, clock)
    edited = await _evaluate(restarted, _invoice(2, task="inbox/inv-1", amount="0.07"))
    assert isinstance(edited, Denied)
    assert "a payment for inbox/inv-1 was authorized" in edited.reason
    # A plain transfer doing what the invoice payment did is still a repeat.
    assert isinstance(await _evaluate(restarted, _invoice(3)), Denied)
    # Negative control: another invoice of the same amount to the same payee is paid.
    assert isinstance(await _evaluate(restarted, _invoice(4, task="inbox/inv-2")), Authorized)


async def test_a_failed_invoice_payment_frees_both_its_task_and_its_content(
    store: SqlEngine, clock: FakeClock
) -> None:
    engine = _engine(store, clock)
    failed = _invoice(1, task="inbox/inv-1")
    assert isinstance(await _evaluate(engine, failed), Authorized)
    await engine.failed(failed, _ctx(engine, failed), "reverted")
    # Both of its rows were deleted: the plain transfer and the task are free again.
    assert isinstance(await _evaluate(_engine(store, clock), _invoice(2)), Authorized)
    again = await _evaluate(_engine(store, clock), _invoice(3, task="inbox/inv-1"))
    assert isinstance(again, Authorized)


async def test_an_offer_is_accepted_once_though_swap_legs_are_not_compared(
    store: SqlEngine, clock: FakeClock
) -> None:
    engine = _engine(store, clock)
    leg = {"kind": "swap_leg", "task": "desk/off-1"}
    accepted = _invoice(1, **leg)
    assert isinstance(await _evaluate(engine, accepted), Authorized)
    await engine.executed(accepted, _ctx(engine, accepted))
    again = await _evaluate(_engine(store, clock), _invoice(2, **leg))
    assert isinstance(again, Denied)
    assert "desk/off-1" in again.reason
    # Negative control: swap legs are not compared by what they do (the default
    # kinds), so the same lock for another offer, or for none, goes through.
    restarted = _engine(store, clock)
    other = _invoice(3, kind="swap_leg", task="desk/off-2")
    assert isinstance(await _evaluate(restarted, other), Authorized)
    assert isinstance(await _evaluate(restarted, _invoice(4, kind="swap_leg")), Authorized)
