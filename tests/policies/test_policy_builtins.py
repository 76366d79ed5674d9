"""Built-in policies: spend limits, rate limit, simulation, authority, kill switch."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from policies import Authorized, Denied, PolicyEngine, StaticPrices
from policies.builtin.approval import HumanApproval, HumanApprovalParams
from policies.builtin.authority import Authority
from policies.builtin.simulation import RequireSimulation, RequireSimulationParams
from policies.testing import (
    FakeClock,
    assert_allows,
    assert_denies,
    attach,
    make_action,
    make_claims,
    make_context,
    make_deployment,
    make_evidence,
    make_simulation,
)


def _engine(policies, store=None, clock=None, **kw) -> PolicyEngine:
    deployment = make_deployment(policies, **kw)
    return PolicyEngine(deployment, store, clock=clock or FakeClock())


async def _verdicts(
    engine: PolicyEngine, *amounts: str, agent: str = "payer", **fields
) -> list[str]:
    found: list[str] = []
    for index, amount in enumerate(amounts):
        action = make_action(agent=agent, amount=amount, plan_id=f"p{index}", **fields)
        ctx = engine.context(
            agent, plan_id=action.plan_id, evidence=make_evidence(), claims=make_claims(agent)
        )
        found.append((await engine.evaluate(action, ctx)).verdict)
    return found


async def test_spend_limit_per_transaction_and_per_day() -> None:
    engine = _engine(
        [{"SpendLimit": {"per_transaction": {"ETH": "0.1"}, "per_day": {"ETH": "0.2"}}}]
    )
    assert await _verdicts(engine, "0.11", "0.1", "0.1", "0.01") == [
        "denied",
        "authorized",
        "authorized",
        "denied",
    ]
    assert isinstance(engine.clock, FakeClock)
    engine.clock.advance(timedelta(days=1))
    assert await _verdicts(engine, "0.1") == ["authorized"]


async def test_spend_limit_in_usd_across_chains_and_unknown_prices() -> None:
    engine = _engine([{"SpendLimit": {"per_day_usd": "400"}}])
    assert await _verdicts(engine, "0.1") == ["authorized"]  # $300
    sol = {"chain": "solana-local", "asset": "SOL"}
    assert await _verdicts(engine, "0.6", "0.7", **sol) == ["authorized", "denied"]  # $90, $105


async def test_spend_limit_per_deployment_counts_every_agent(store) -> None:
    limit = {"SpendLimit": {"per_day": {"ETH": "0.3"}, "scope": "deployment"}}
    engine = _engine([limit], store, agents=("payer", "taker"))
    assert await _verdicts(engine, "0.2") == ["authorized"]
    assert await _verdicts(engine, "0.2", "0.1", agent="taker") == ["denied", "authorized"]


async def test_rate_limit_returns_declined_slots_and_survives_restart(store) -> None:
    clock = FakeClock()
    policies = [
        {"RateLimit": {"max_actions": 2, "per": "1h"}},
        {"SpendLimit": {"per_transaction": {"ETH": "0.1"}}},
    ]
    engine = _engine(policies, store, clock)
    # The second action is refused by the spend limit, so it must not use a rate slot.
    assert await _verdicts(engine, "0.01", "0.5", "0.01", "0.01") == [
        "authorized",
        "denied",
        "authorized",
        "denied",
    ]
    engine = _engine(policies, store, clock)
    assert await _verdicts(engine, "0.01") == ["denied"]
    clock.advance(timedelta(hours=1))
    assert await _verdicts(engine, "0.01") == ["authorized"]


async def test_require_simulation() -> None:
    ctx = make_context()
    policy = attach(RequireSimulation(RequireSimulationParams()), ctx)
    action = make_action()
    await assert_denies(policy, action, ctx, "no simulation")
    good = make_context(simulation=make_simulation(action))
    await assert_allows(policy, action, good)
    drained = make_context(simulation=make_simulation(action, ETH="-1.0501"))
    await assert_denies(policy, action, drained, "balance change of ETH")
    other = make_context(simulation=make_simulation(make_action(amount="0.06")))
    await assert_denies(policy, action, other, "different transaction")
    failed = make_simulation(action).model_copy(update={"success": False, "error": "revert"})
    await assert_denies(policy, action, make_context(simulation=failed), "revert")
    extra = make_context(simulation=make_simulation(action, SOL="-1"))
    await assert_denies(policy, action, extra, "balance change of SOL")


async def test_authority_checks_every_claim() -> None:
    clock = FakeClock()
    policy = Authority()
    base = make_context(clock=clock, claims=make_claims(per_transaction={"ETH": "0.1"}))
    attach(policy, base)
    await assert_allows(policy, make_action(), base)
    await assert_denies(policy, make_action(amount="0.2"), base, "per-transaction")
    await assert_denies(policy, make_action(), make_context(clock=clock), "no verified authority")
    cases = {
        "chain": make_claims(chains=["solana-local"]),
        "asset": make_claims(assets=["SOL"]),
        "valid from": make_claims(valid_from=clock.now() + timedelta(days=1)),
        "for agent": make_claims("taker"),
    }
    for words, claims in cases.items():
        await assert_denies(policy, make_action(), make_context(clock=clock, claims=claims), words)


async def test_authority_per_day_uses_the_ledger() -> None:
    engine = _engine([{"Authority": {}}])
    ctx = engine.context(
        "payer", plan_id="p", evidence=make_evidence(), claims=make_claims(per_day={"ETH": "0.1"})
    )
    outcomes = [
        await engine.evaluate(make_action(amount=amount, plan_id="p"), ctx)
        for amount in ("0.06", "0.05")
    ]
    assert isinstance(outcomes[0], Authorized)
    assert isinstance(outcomes[1], Denied)
    assert "per-day" in outcomes[1].reason


async def test_kill_switch_by_file(tmp_path: Path) -> None:
    engine = _engine([{"KillSwitch": {}}], data_dir=str(tmp_path))
    assert await _verdicts(engine, "0.01") == ["authorized"]
    (tmp_path / "halt").mkdir()
    (tmp_path / "halt" / "payer").touch()
    assert await _verdicts(engine, "0.01") == ["denied"]
    (tmp_path / "halt" / "payer").unlink()
    (tmp_path / "halt" / "all").touch()
    assert await _verdicts(engine, "0.01") == ["denied"]


async def test_human_approval_per_asset_threshold_and_unpriced_assets() -> None:
    engine = _engine([{"HumanApproval": {"above": {"ETH": "0.1"}}}])
    assert await _verdicts(engine, "0.1", "0.2") == ["authorized", "queued"]
    policy = HumanApproval(HumanApprovalParams(above_usd=Decimal(10)))
    unpriced = make_context(prices=StaticPrices({}))
    decision = await policy.evaluate(make_action(), unpriced)
    assert decision.verdict == "needs_approval"


async def test_spend_limit_denies_an_asset_no_limit_covers_unless_told_to_allow() -> None:
    sol = {"chain": "solana-local", "asset": "SOL"}
    engine = _engine([{"SpendLimit": {"per_day": {"ETH": "1"}}}])
    ctx = engine.context("payer", plan_id="p", evidence=make_evidence())
    outcome = await engine.evaluate(make_action(amount="0.01", plan_id="p", **sol), ctx)
    assert isinstance(outcome, Denied)
    assert outcome.policy == "SpendLimit"
    assert "no limit for SOL" in outcome.reason
    assert "unlisted: allow" in outcome.reason
    assert await _verdicts(engine, "0.01") == ["authorized"]  # ETH has its limit
    opened = _engine([{"SpendLimit": {"per_day": {"ETH": "1"}, "unlisted": "allow"}}])
    assert await _verdicts(opened, "0.01", **sol) == ["authorized"]
    in_usd = _engine([{"SpendLimit": {"per_transaction_usd": "10"}}])  # covers every asset
    assert await _verdicts(in_usd, "0.01", "1", **sol) == ["authorized", "denied"]
    windowed = _engine([{"SpendLimit": {"windows": [{"per": "1h", "limits": {"SOL": "1"}}]}}])
    assert await _verdicts(windowed, "0.5", **sol) == ["authorized"]
    assert await _verdicts(windowed, "0.01") == ["denied"]  # ETH is not named anywhere
