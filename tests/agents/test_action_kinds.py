"""The action kinds are modules behind one registry: one vocabulary from the planner to
the policies, and a schema generated from each kind's pydantic model."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal, get_args

import pytest
from pydantic import Field

from agents.actions import KINDS, kind_of
from agents.actions.base import AgentNames, Leg, PlanModel, object_schema
from agents.plan import Plan, plan_schema, validate_plan
from agents.planners._prompt import build_messages
from agents.tasks import Task
from config.models import Deployment
from policies.actions import ActionKind
from tests.agents.conftest import deployment_data, make_observation

DEPLOYMENT = Deployment.model_validate(deployment_data())
ACTIONS = Path(__file__).resolve().parents[2] / "agents" / "actions"
PRODUCED_BY_NO_PLANNER = {"contract_call", "program_call"}
"""Kinds the Allowlist judges that no planner produces yet (see policies/actions.py)."""

LEG = {"chain": "arb", "asset": "ETH", "amount": "1"}
EXAMPLES = {
    "transfer": {"kind": "transfer", **LEG, "counterparty": "acme"},
    "swap": {
        "kind": "swap",
        "counterparty": "bob",
        "give": LEG,
        "take": {"chain": "sol", "asset": "SOL", "amount": "2"},
    },
    "pay_many": {
        "kind": "pay_many",
        "legs": [{**LEG, "counterparty": "acme"}, {**LEG, "counterparty": "bob"}],
    },
    "pay_invoice": {"kind": "pay_invoice", "task": "inv-1"},
    "accept_offer": {"kind": "accept_offer", "task": "off-1"},
}
TASKS = (
    Task(id="inv-1", source="inbox", payee="acme", chain="arb", asset="ETH", amount=Decimal(1)),
    Task.model_validate(
        {
            "id": "off-1",
            "kind": "offer",
            "source": "desk",
            "payee": "bob",
            "give": LEG,
            "take": {"chain": "sol", "asset": "SOL", "amount": "2"},
        }
    ),
)
"""The invoice and the offer the pay_invoice and accept_offer examples name."""


def test_every_kind_is_one_module_registered_under_its_plan_literal():
    modules = {path.stem for path in ACTIONS.glob("*.py")} - {"__init__", "base"}
    assert modules == set(KINDS) == set(EXAMPLES)
    for name, kind in KINDS.items():
        literal = kind.model.model_fields["kind"].annotation
        assert get_args(literal) == (name,)
        assert f'"kind": "{name}"' in kind.prompt


def test_the_policies_vocabulary_is_what_the_kinds_propose_and_nothing_else():
    proposed = {policy_kind for kind in KINDS.values() for policy_kind in kind.proposes}
    assert proposed | PRODUCED_BY_NO_PLANNER == set(get_args(ActionKind))
    assert not proposed & PRODUCED_BY_NO_PLANNER


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_plan_union_the_checks_and_the_schema_follow_the_registry(name):
    plan = validate_plan({"actions": [EXAMPLES[name]]}, DEPLOYMENT, "alice", TASKS)
    assert kind_of(plan.actions[0]) is KINDS[name]
    schema = plan_schema(DEPLOYMENT, "alice", TASKS)
    variants = schema["properties"]["actions"]["items"]["anyOf"]
    assert {"const": name} in [variant["properties"]["kind"] for variant in variants]


def test_the_prompt_lists_every_kind_s_shape():
    rules = build_messages(DEPLOYMENT, make_observation(tasks=TASKS))[0]["content"]
    for kind in KINDS.values():
        assert kind.prompt in rules


def test_the_plan_model_refuses_a_kind_the_registry_does_not_hold():
    with pytest.raises(ValueError, match="does not match any of the expected tags"):
        Plan.model_validate({"actions": [{"kind": "burn", **LEG}]})


class _Tip(PlanModel):
    kind: Literal["tip"]
    counterparty: str
    legs: tuple[Leg, ...] = Field(min_length=1, max_length=2)


def test_a_fragment_is_generated_from_the_model_and_must_narrow_every_free_field():
    names = AgentNames(DEPLOYMENT, "alice")
    legs = {"type": "array", "items": {"anyOf": names.legs()}}
    schema = object_schema(_Tip, {"counterparty": {"enum": names.parties}, "legs": legs})
    assert list(schema["properties"]) == ["kind", "counterparty", "legs"]
    assert schema["properties"]["kind"] == {"const": "tip"}
    assert schema["required"] == ["kind", "counterparty", "legs"]
    assert schema["additionalProperties"] is False
    with pytest.raises(ValueError, match=r"free fields are \['counterparty', 'legs'\]"):
        object_schema(_Tip, {"counterparty": {"enum": names.parties}})
    with pytest.raises(ValueError, match="narrowed"):
        object_schema(_Tip, {"counterparty": {}, "legs": legs, "memo": {}})
