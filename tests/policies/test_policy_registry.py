"""Policies from YAML: names, dotted paths, parameter errors with field paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import load_deployment
from policies import BUILTINS, PolicyConfigError, PolicyEngine, build_policies, resolve_policy
from policies.registry import validate_deployment_policies
from policies.testing import make_deployment

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_deployment_policies_are_valid_and_build() -> None:
    deployment = load_deployment(ROOT / "config" / "demo.yaml")
    assert validate_deployment_policies(deployment) == []
    names = [p.name for p in build_policies(deployment, "payer")]
    assert names == [
        "KillSwitch",
        "ConfidenceBreaker",
        "Allowlist",
        "DuplicateGuard",
        "SpendLimit",
        "RateLimit",
        "HumanApproval",
    ]
    assert [p.name for p in PolicyEngine(deployment).policies("taker")][-1] == "SpendLimit"


def test_unknown_names_fail_with_the_valid_names() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_policy("SpendLimits")
    for name in BUILTINS:
        assert name in str(caught.value)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("no_such_module.x:Policy", "cannot load the policy"),
        ("policies.testing:NoSuchClass", "cannot load the policy"),
        ("policies.testing:FakeClock", "not a subclass of policies.Policy"),
    ],
)
def test_bad_dotted_paths(name: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        resolve_policy(name)


def test_a_user_policy_resolves_by_either_path_form() -> None:
    from tests.policies.weekend_freeze import WeekendFreeze

    assert resolve_policy("tests.policies.weekend_freeze:WeekendFreeze") is WeekendFreeze
    assert resolve_policy("tests.policies.weekend_freeze.WeekendFreeze") is WeekendFreeze
    with pytest.raises(ConfigError, match="cannot load the policy"):
        resolve_policy("tests.policies.weekend_freeze.NoSuchPolicy")


def test_every_problem_is_reported_with_its_path() -> None:
    deployment = make_deployment(
        [
            {"SpendLimit": {"per_transaction": {"ETH": 0.1}}},
            {"RateLimit": {"max_actions": 0, "per": "soon"}},
            {"Nope": {}},
            {"SpendLimit": {"per_day": {"DOGE": "1"}}},
            {"KillSwitch": None},
        ]
    )
    problems = validate_deployment_policies(deployment)
    prefix = "agents[0].policies[{}] (agent 'payer', policy '{}'): "
    assert problems[0].startswith(prefix.format(0, "SpendLimit") + "per_transaction.ETH")
    assert "float" in problems[0]
    assert {p.split(": ")[1].split(":")[0] for p in problems[1:3]} == {"max_actions", "per"}
    assert problems[3].startswith(prefix.format(2, "Nope") + "unknown policy 'Nope'")
    assert problems[4] == prefix.format(3, "SpendLimit") + (
        "unknown asset 'DOGE'; defined assets: ['ETH', 'SOL']"
    )
    assert len(problems) == 5
    with pytest.raises(PolicyConfigError) as caught:
        build_policies(deployment, "payer")
    assert caught.value.problems == problems


def test_unknown_parameters_are_rejected() -> None:
    deployment = make_deployment([{"RateLimit": {"max_actions": 1, "per": "1h", "burst": 2}}])
    (problem,) = validate_deployment_policies(deployment)
    assert "burst" in problem
