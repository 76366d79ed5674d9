"""The decision benchmark's judge, without the model: every scenario is well formed, and
its "wrong and authorized" count can count (bench/bench_decisions.py)."""

from __future__ import annotations

import importlib.util
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from agents.plan import validate_plan
from policies.actions import ConfidenceEvidence

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_decisions", ROOT / "bench/bench_decisions.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


bench = _bench()
DEPLOYMENT = bench.load_deployment(bench.HERE / "deployment.yaml")
SCENARIOS = yaml.safe_load((bench.HERE / "scenarios.yaml").read_text())["scenarios"]
SURE = ConfidenceEvidence(
    self_reported=Decimal(1), sample_agreement=Decimal(1), samples=3, mean_token_logprob=Decimal(0)
)


def test_there_are_forty_scenarios_with_unique_ids() -> None:
    ids = [scenario["id"] for scenario in SCENARIOS]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    assert {s["category"] for s in SCENARIOS} >= {
        "invoice",
        "duplicate",
        "mandate",
        "injection",
        "conflict",
        "swap",
        "idle",
    }


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s["id"])
def test_each_scenario_builds_an_observation_and_a_valid_expected_plan(scenario) -> None:
    """The expected plan is one the agent can make: the payer (which may only pay
    invoices) as pay_invoice of the scenario's invoices, paying what they ask, and the
    trader (which may only accept offers) as accept_offer of the scenario's offers."""
    observation = bench.observation_for(scenario, DEPLOYMENT)
    agent = scenario["agent"]
    assert observation.mandate == DEPLOYMENT.agent(agent).mandate
    expected = bench.payments(bench.expected_plan(scenario))
    (kind,) = DEPLOYMENT.agent(agent).actions
    by_payment = {bench._key(bench._settling(t)): t.id for t in observation.tasks if t.payee}
    ids = [by_payment[key] for key in expected.elements()]
    actions = [{"kind": kind, "task": task_id} for task_id in ids]
    plan = validate_plan({"actions": actions}, DEPLOYMENT, agent, observation.tasks)
    assert bench.payments(plan, observation.tasks) == expected


def _scenario(name: str) -> dict[str, Any]:
    return next(s for s in SCENARIOS if s["id"] == name)


async def _blocked(name: str, wrong: list[str]) -> list[str] | None:
    scenario = _scenario(name)
    engine = await bench.engine_for(DEPLOYMENT, scenario)
    stoppers: list[str] | None = await bench.blocked_by(engine, scenario, wrong, SURE)
    return stoppers


def _keys(actions: list[dict[str, Any]], agent: str) -> list[str]:
    """What the actions pay, as the judge's keys (any kind: the judge checks policies)."""
    plan = bench.Plan.model_validate({"actions": actions})
    return list(bench.payments(plan).elements())


async def test_paying_a_paid_invoice_by_its_id_is_blocked_by_the_duplicate_guard() -> None:
    scenario = _scenario("already-paid")
    observation = bench.observation_for(scenario, DEPLOYMENT)
    plan = validate_plan(
        {"actions": [{"kind": "pay_invoice", "task": "inv-201"}]},
        DEPLOYMENT,
        "payer",
        observation.tasks,
    )
    settles: dict[str, str] = {}
    wrong = list(bench.payments(plan, observation.tasks, settles).elements())
    assert settles == {wrong[0]: "inbox/inv-201"}
    engine = await bench.engine_for(DEPLOYMENT, scenario)
    assert await bench.blocked_by(engine, scenario, wrong, SURE, settles) == ["DuplicateGuard"]


async def test_a_payment_the_mandate_excludes_is_blocked_by_the_allowlist() -> None:
    wrong = _keys(
        [
            {
                "kind": "transfer",
                "chain": "arbitrum-local",
                "asset": "ETH",
                "amount": "0.02",
                "counterparty": "initech",
            }
        ],
        "payer",
    )
    assert await _blocked("payee-excluded-by-mandate", wrong) == ["Allowlist"]


async def test_paying_a_paid_invoice_again_is_blocked_by_the_duplicate_guard() -> None:
    wrong = _keys(
        [
            {
                "kind": "transfer",
                "chain": "arbitrum-local",
                "asset": "ETH",
                "amount": "0.05",
                "counterparty": "acme-supplier",
            }
        ],
        "payer",
    )
    assert await _blocked("already-paid", wrong) == ["DuplicateGuard"]


async def test_a_wrong_payment_the_policies_allow_counts_as_authorized() -> None:
    """Negative control: the judge reports None (wrong and authorized) when no policy stops
    an unexpected payment, so the benchmark's 'must be 0' can fail."""
    wrong = _keys(
        [
            {
                "kind": "transfer",
                "chain": "arbitrum-local",
                "asset": "ETH",
                "amount": "0.01",
                "counterparty": "globex",
            }
        ],
        "payer",
    )
    assert await _blocked("payer-idle", wrong) is None


def test_two_transfers_and_one_pay_many_of_the_same_legs_are_the_same_plan() -> None:
    legs = [
        {
            "chain": "arbitrum-local",
            "asset": "ETH",
            "amount": "0.02",
            "counterparty": "acme-supplier",
        },
        {"chain": "arbitrum-local", "asset": "ETH", "amount": "0.030", "counterparty": "globex"},
    ]
    transfers = [{"kind": "transfer", **leg} for leg in legs]
    assert sorted(_keys(transfers, "payer")) == sorted(
        _keys([{"kind": "pay_many", "legs": legs}], "payer")
    )
    assert _keys(transfers[:1], "payer") != _keys(transfers[1:], "payer")


async def test_the_planner_sees_what_the_runtime_shows_paid_and_ruled_out_tasks_set_aside() -> None:
    """The bench screens each observation with the scenario's engine, as the runtime does:
    a paid invoice, a payee off the allowlist and an accepted offer never reach the model.
    Negative control: an open invoice and a fresh offer of the same legs do."""
    cases = {
        "already-paid": ([], "DuplicateGuard"),
        "payee-excluded-by-mandate": ([], "Allowlist"),
        "over-the-limit": ([], "SpendLimit"),
        "swap-already-open": ([], "DuplicateGuard"),
        "fair-swap": (["off-601"], None),
        "pay-one-acme": (["inv-101"], None),
    }
    for name, (kept, policy) in cases.items():
        scenario = _scenario(name)
        engine = await bench.engine_for(DEPLOYMENT, scenario)
        seen = bench.screened(bench.observation_for(scenario, DEPLOYMENT), engine.screen)
        assert [task.id for task in seen.tasks] == kept, name
        reasons = [item.reason for item in seen.set_aside]
        assert reasons == ([] if policy is None else [reasons[0]]), name
        if policy is not None:
            assert reasons[0].startswith(f"{policy}: "), (name, reasons)


async def test_a_correct_plan_of_low_confidence_is_reported_as_held_by_the_breaker() -> None:
    """The bench reports a right plan the runtime would not carry out; negative control:
    the same plan with certain evidence would be authorized."""
    scenario = _scenario("pay-one-acme")
    keys = _keys(scenario["expect"], "payer")
    doubtful = ConfidenceEvidence(
        self_reported=Decimal("0.5"), sample_agreement=Decimal("0.5"), samples=2
    )
    engine = await bench.engine_for(DEPLOYMENT, scenario)
    assert await bench.stoppers(engine, scenario, keys, doubtful) == ["ConfidenceBreaker"]
    fresh = await bench.engine_for(DEPLOYMENT, scenario)
    assert await bench.stoppers(fresh, scenario, keys, SURE) == [None]
