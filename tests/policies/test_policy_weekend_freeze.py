"""The documented custom policy, tested the way docs/writing-policies.md says."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from policies import Authorized, Denied, PolicyEngine, validate_deployment_policies
from policies.testing import (
    FakeClock,
    assert_allows,
    assert_denies,
    make_action,
    make_context,
    make_deployment,
    make_evidence,
)
from tests.policies.weekend_freeze import WeekendFreeze, WeekendFreezeParams

ROOT = Path(__file__).resolve().parents[2]
FRIDAY_EVENING = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)
MONDAY_NOON = datetime(2026, 1, 12, 12, 0, tzinfo=UTC)
DOTTED = "tests.policies.weekend_freeze:WeekendFreeze"


async def test_denies_during_the_weekend_and_allows_on_weekdays() -> None:
    policy = WeekendFreeze(WeekendFreezeParams())
    action = make_action()
    await assert_denies(policy, action, make_context(clock=FakeClock(FRIDAY_EVENING)), "weekend")
    await assert_allows(policy, action, make_context(clock=FakeClock(MONDAY_NOON)))


async def test_small_payments_pass_during_the_freeze() -> None:
    policy = WeekendFreeze(WeekendFreezeParams.model_validate({"allow_below_usd": "200"}))
    ctx = make_context(clock=FakeClock(FRIDAY_EVENING))
    await assert_allows(policy, make_action(amount="0.05"), ctx)  # $150
    await assert_denies(policy, make_action(amount="0.1"), ctx, "weekend")  # $300


async def test_named_by_dotted_path_in_yaml_and_run_by_the_engine() -> None:
    clock = FakeClock(FRIDAY_EVENING)
    engine = PolicyEngine(make_deployment([{DOTTED: {"timezone": "Europe/Berlin"}}]), clock=clock)
    ctx = engine.context("payer", plan_id="plan-1", evidence=make_evidence())
    assert isinstance(await engine.evaluate(make_action(), ctx), Denied)
    clock.set(MONDAY_NOON)
    assert isinstance(await engine.evaluate(make_action(), ctx), Authorized)


def test_bad_parameters_name_the_agent_and_the_policy() -> None:
    deployment = make_deployment([{DOTTED: {"allow_below_usd": 1.5}}])
    (problem,) = validate_deployment_policies(deployment)
    assert problem.startswith(f"agents[0].policies[0] (agent 'payer', policy '{DOTTED}'): ")
    assert "allow_below_usd" in problem
    assert "float" in problem


def test_the_documentation_shows_this_exact_code() -> None:
    doc = (ROOT / "docs" / "writing-policies.md").read_text(encoding="utf-8")
    source = (ROOT / "tests" / "policies" / "weekend_freeze.py").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.DOTALL)
    body = source.split('"""\n', 2)[2].lstrip("\n")  # the code after the module docstring
    assert body in blocks
