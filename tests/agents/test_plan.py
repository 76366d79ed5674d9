"""Plans: shape, names the agent may use, amount precision, the generated schema."""

from __future__ import annotations

import json
import re
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.actions.base import allowed_assets
from agents.actions.pay_many import PayMany
from agents.actions.swap import Swap
from agents.actions.transfer import Transfer
from agents.plan import (
    InvalidPlan,
    Plan,
    failed_evidence,
    parse_plan,
    plan_schema,
    validate_plan,
)
from config.loader import load_deployment
from config.models import Deployment, ScriptedPlanner
from policies.actions import ConfidenceEvidence
from tests.agents.conftest import deployment_data

ACME = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
DEPLOYMENT = Deployment.model_validate(deployment_data())


def transfer(**fields: str) -> dict[str, object]:
    action = {
        "kind": "transfer",
        "chain": "arb",
        "asset": "USDC",
        "amount": "5",
        "counterparty": "acme",
        **fields,
    }
    return {"actions": [action], "rationale": "pay", "confidence": "0.9"}


def test_demo_swap_script_is_a_valid_plan_for_the_maker():
    demo = load_deployment("config/demo.yaml")
    script = next(p for p in demo.planners if p.name == "swap-script")
    assert isinstance(script, ScriptedPlanner)
    plan = validate_plan(script.plans[0], demo, "maker")
    assert isinstance(plan.actions[0], Swap)
    assert plan.confidence == Decimal("0.95")


def test_parse_plan_accepts_a_valid_transfer():
    plan = parse_plan(json.dumps(transfer()), DEPLOYMENT, "alice")
    assert plan.actions == (
        Transfer(
            kind="transfer", chain="arb", asset="USDC", amount=Decimal(5), counterparty="acme"
        ),
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"counterparty": "mallory"}, "unknown counterparty 'mallory'; use one of: acme, bob"),
        ({"counterparty": ACME}, "counterparty: String should match pattern"),
        ({"chain": "base"}, "unknown chain 'base'; use one of: arb, sol"),
        ({"asset": "SOL"}, "unknown asset on arb 'SOL'; use one of: ETH, USDC"),
        ({"amount": "1.0000001"}, "1.0000001 has more than the 6 decimal places USDC allows"),
        ({"amount": "0"}, "must be greater than zero"),
        ({"amount": "-3"}, "must be greater than zero"),
        ({"kind": "burn"}, "does not match any of the expected tags"),
    ],
)
def test_parse_plan_rejects_with_a_clear_error(fields, message):
    with pytest.raises(InvalidPlan) as caught:
        parse_plan(json.dumps(transfer(**fields)), DEPLOYMENT, "alice")
    assert message in str(caught.value)


def test_a_single_leg_pay_many_becomes_a_transfer():
    leg = {"chain": "arb", "asset": "USDC", "amount": "5", "counterparty": "acme"}
    plan = validate_plan({"actions": [{"kind": "pay_many", "legs": [leg]}]}, DEPLOYMENT, "alice")
    assert plan.actions == (Transfer(kind="transfer", **leg),)
    two = validate_plan(
        {"actions": [{"kind": "pay_many", "legs": [leg, leg]}]}, DEPLOYMENT, "alice"
    )
    assert isinstance(two.actions[0], PayMany)


def test_json_number_amounts_are_refused():
    data = transfer()
    data["actions"][0]["amount"] = 0.1  # type: ignore[index]
    with pytest.raises(InvalidPlan, match="write amounts as strings"):
        validate_plan(data, DEPLOYMENT, "alice")


def test_counterparty_without_address_on_the_chain_is_refused():
    data = {
        "actions": [
            {
                "kind": "pay_many",
                "legs": [
                    {"chain": "arb", "asset": "ETH", "amount": "1", "counterparty": "acme"},
                ],
            }
        ]
    }
    validate_plan(data, DEPLOYMENT, "alice")
    bob_data = {
        "actions": [
            {
                "kind": "transfer",
                "chain": "base",
                "asset": "ETH",
                "amount": "1",
                "counterparty": "acme",
            }
        ]
    }
    with pytest.raises(InvalidPlan, match="unknown counterparty 'acme'"):
        validate_plan(bob_data, DEPLOYMENT, "bob")


def test_an_agent_is_never_its_own_counterparty():
    schema = plan_schema(DEPLOYMENT, "alice")
    assert "alice" not in json.dumps(schema["properties"]["actions"])
    with pytest.raises(InvalidPlan, match="unknown counterparty 'alice'"):
        validate_plan(transfer(counterparty="alice"), DEPLOYMENT, "alice")


def test_not_json_is_an_invalid_plan_quoting_the_reply():
    expected = r"reply is not JSON \(Expecting value at character 0\): 'Sure! Here is the plan'"
    with pytest.raises(InvalidPlan, match=expected):
        parse_plan("Sure! Here is the plan", DEPLOYMENT, "alice")


def test_schema_pairs_each_asset_with_its_chain_and_decimals_and_never_names_addresses():
    schema = plan_schema(DEPLOYMENT, "alice")
    transfers = [
        v["properties"]
        for v in schema["properties"]["actions"]["items"]["anyOf"]
        if v["properties"]["kind"] == {"const": "transfer"}
    ]
    assert [
        (t["chain"]["const"], t["asset"]["const"], t["counterparty"]["enum"]) for t in transfers
    ] == [
        ("arb", "ETH", ["acme", "bob"]),
        ("arb", "USDC", ["acme", "bob"]),
        ("sol", "SOL", ["acme", "bob"]),
    ]
    assert pattern_for(schema, "arb", "USDC") == "^(0|[1-9][0-9]{0,9})([.][0-9]{1,6})?$"
    bob = json.dumps(plan_schema(DEPLOYMENT, "bob"))
    assert '"enum": ["alice"]' in bob
    assert '"const": "base"' in bob
    text = json.dumps(schema) + bob
    assert "0x" not in text
    assert "9WzD" not in text


def test_schema_offers_a_counterparty_only_on_chains_where_it_has_an_address():
    data = deployment_data()
    del data["address_book"][0]["addresses"]["sol"]
    schema = plan_schema(Deployment.model_validate(data), "alice")
    variants = [v["properties"] for v in schema["properties"]["actions"]["items"]["anyOf"]]
    on_sol = next(v for v in variants if v.get("chain") == {"const": "sol"})
    assert on_sol["counterparty"] == {"enum": ["bob"]}


def test_agent_with_no_counterparty_gets_a_schema_that_only_allows_the_empty_plan():
    data = deployment_data()
    data["address_book"] = [{"name": "alice", "agent": "alice"}]
    deployment = Deployment.model_validate(data)
    schema = plan_schema(deployment, "alice")
    assert schema["properties"]["actions"] == {"type": "array", "maxItems": 0}


def test_failed_evidence_scores_near_zero_and_scores_cannot_be_supplied():
    # Only the "unknown" token term remains, shrunk by the repairs: far below any threshold.
    assert failed_evidence(samples=2, repairs=2).score < Decimal("0.05")
    with pytest.raises(ValueError, match="Extra inputs"):
        ConfidenceEvidence.model_validate(
            {"self_reported": "1", "sample_agreement": "1", "score": "1"}
        )


NAMES = st.sampled_from(
    ["arb", "base", "sol", "acme", "alice", "bob", "mallory", "ETH", "USDC", "SOL", "BTC"]
)
AMOUNTS = st.decimals(
    min_value=Decimal("-1"),
    max_value=Decimal("1e6"),
    places=20,
    allow_nan=False,
    allow_infinity=False,
).map(lambda d: format(d, "f"))
LEG = st.fixed_dictionaries({"chain": NAMES, "asset": NAMES, "amount": AMOUNTS})
PAYMENT = st.fixed_dictionaries(
    {"chain": NAMES, "asset": NAMES, "amount": AMOUNTS, "counterparty": NAMES}
)
ACTION = st.one_of(
    PAYMENT.map(lambda p: {"kind": "transfer", **p}),
    st.fixed_dictionaries(
        {"kind": st.just("swap"), "counterparty": NAMES, "give": LEG, "take": LEG}
    ),
    st.fixed_dictionaries(
        {"kind": st.just("pay_many"), "legs": st.lists(PAYMENT, min_size=1, max_size=3)}
    ),
)


def pattern_for(schema, chain: str, asset: str) -> str:
    for variant in schema["properties"]["actions"]["items"]["anyOf"]:
        props = variant["properties"]
        if props.get("chain") == {"const": chain} and props.get("asset") == {"const": asset}:
            return str(props["amount"]["pattern"])
    raise AssertionError(f"no transfer variant for {asset} on {chain}")


def legs_of(plan: Plan):
    for action in plan.actions:
        if action.kind == "transfer":
            yield action, action.counterparty
        elif action.kind == "swap":
            yield action.give, action.counterparty
            yield action.take, action.counterparty
        else:
            for leg in action.legs:
                yield leg, leg.counterparty


@settings(max_examples=300)
@given(agent=st.sampled_from(["alice", "bob"]), actions=st.lists(ACTION, max_size=3))
def test_any_plan_that_validates_uses_only_known_names_and_valid_precision(agent, actions):
    data = {"actions": actions, "rationale": "r", "confidence": "0.5"}
    try:
        plan = validate_plan(data, DEPLOYMENT, agent)
    except InvalidPlan:
        return
    config = DEPLOYMENT.agent(agent)
    assets = allowed_assets(DEPLOYMENT, config)
    schema = plan_schema(DEPLOYMENT, agent)
    for leg, party in legs_of(plan):
        assert party in {"acme", "bob"} if agent == "alice" else party == "alice"
        assert leg.chain in config.chains
        decimals = assets[(leg.chain, leg.asset)]
        assert leg.amount > 0
        assert leg.amount == round(leg.amount, decimals)
        assert re.match(pattern_for(schema, leg.chain, leg.asset), format(leg.amount, "f"))


@settings(max_examples=300)
@given(
    pair=st.sampled_from(sorted(allowed_assets(DEPLOYMENT, DEPLOYMENT.agent("alice")))),
    party=st.sampled_from(["acme", "bob"]),
    amount=st.decimals(
        min_value=Decimal("-1"),
        max_value=Decimal("1e9"),
        places=20,
        allow_nan=False,
        allow_infinity=False,
    ),
)
def test_known_names_validate_exactly_when_the_amount_fits_the_asset(pair, party, amount):
    chain, asset = pair
    decimals = allowed_assets(DEPLOYMENT, DEPLOYMENT.agent("alice"))[pair]
    data = transfer(chain=chain, asset=asset, amount=format(amount, "f"), counterparty=party)
    with localcontext(prec=100):  # exact: the oracle must not round
        whole_base_units = (amount * 10**decimals) % 1 == 0
    expected = 0 < amount < 10**10 and whole_base_units
    try:
        validate_plan(data, DEPLOYMENT, "alice")
    except InvalidPlan:
        assert not expected
    else:
        assert expected
