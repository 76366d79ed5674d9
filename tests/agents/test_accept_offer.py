"""accept_offer: the model names an offer; the schema lists only offers the agent could
accept, both legs come from the offer, and the prompt states each offer's rate."""

from __future__ import annotations

from typing import Any

import pytest

from agents.actions.accept_offer import swap_of
from agents.plan import InvalidPlan, plan_schema, validate_plan
from agents.planners._prompt import build_messages
from agents.tasks import Task
from config.models import Deployment
from tests.agents.conftest import deployment_data, make_observation

DEPLOYMENT = Deployment.model_validate(deployment_data())


def offer(task_id: str, payee: str = "alice", **legs: Any) -> Task:
    sides = {
        "give": {"chain": "arb", "asset": "ETH", "amount": "0.5"},
        "take": {"chain": "sol", "asset": "SOL", "amount": "10"},
        **legs,
    }
    return Task.model_validate(
        {"id": task_id, "kind": "offer", "source": "desk", "payee": payee, **sides}
    )


def offer_enum(schema: dict[str, Any]) -> list[str]:
    variants = schema["properties"]["actions"]["items"]["anyOf"]
    (accepting,) = [v for v in variants if v["properties"]["kind"] == {"const": "accept_offer"}]
    return list(accepting["properties"]["task"]["enum"])


def accept(task_id: str) -> dict[str, Any]:
    return {"actions": [{"kind": "accept_offer", "task": task_id}]}


def test_the_schema_offers_exactly_the_offers_the_agent_could_accept() -> None:
    tasks = (
        offer("ok"),
        offer("stranger", payee="acme"),  # bob's counterparties are [alice] only
        offer("no-chain", give={"chain": "base", "asset": "USDC", "amount": "1"}),
        offer("too-fine", give={"chain": "sol", "asset": "SOL", "amount": "0.0000000001"}),
        offer("same-asset", take={"chain": "arb", "asset": "ETH", "amount": "1"}),
    )
    assert offer_enum(plan_schema(DEPLOYMENT, "bob", tasks)) == ["ok"]
    # Nothing to accept: no accept_offer variant at all.
    variants = plan_schema(DEPLOYMENT, "bob", ())["properties"]["actions"]["items"]["anyOf"]
    assert {"const": "accept_offer"} not in [v["properties"]["kind"] for v in variants]


def test_a_plan_naming_an_offer_it_cannot_accept_is_refused_with_the_reason() -> None:
    tasks = (offer("ok"), offer("stranger", payee="acme"))
    assert validate_plan(accept("ok"), DEPLOYMENT, "bob", tasks).actions[0].task == "ok"
    with pytest.raises(InvalidPlan, match="no open offer 'gone'; open ones: ok, stranger"):
        validate_plan(accept("gone"), DEPLOYMENT, "bob", tasks)
    with pytest.raises(InvalidPlan, match="acme"):
        validate_plan(accept("stranger"), DEPLOYMENT, "bob", tasks)
    # The same offer named twice is accepted once.
    twice = {"actions": [accept("ok")["actions"][0]] * 2}
    assert len(validate_plan(twice, DEPLOYMENT, "bob", tasks).actions) == 1


def test_the_swap_is_the_offer_s_own_legs_and_an_invoice_is_no_offer() -> None:
    swap = swap_of(offer("ok"))
    assert swap is not None
    assert (swap.counterparty, swap.give.asset, swap.take.asset) == ("alice", "ETH", "SOL")
    assert (str(swap.give.amount), str(swap.take.amount)) == ("0.5", "10")
    invoice = Task(id="inv-1", source="inbox", payee="alice", chain="arb", asset="ETH")
    assert swap_of(invoice) is None


def test_an_offer_states_both_legs_and_only_an_offer_has_legs() -> None:
    with pytest.raises(ValueError, match="an offer states both `give` and `take`"):
        Task.model_validate({"id": "o", "kind": "offer", "source": "desk", "payee": "alice"})
    leg = {"chain": "arb", "asset": "ETH", "amount": "1"}
    with pytest.raises(ValueError, match="no other kind of task has them"):
        Task.model_validate({"id": "i", "source": "inbox", "give": leg, "take": leg})
    with pytest.raises(ValueError, match="not in `chain`/`asset`/`amount`"):
        Task.model_validate({**offer("o").model_dump(mode="json"), "amount": "1"})


def test_the_prompt_states_each_offer_s_rate_from_the_agent_s_side() -> None:
    observation = make_observation("bob", tasks=(offer("off-7"),))
    situation = build_messages(DEPLOYMENT, observation)[1]["content"]
    assert (
        "offer off-7 from alice: you give 0.5 ETH on arb, you get 10 SOL on sol "
        "(rate 20 SOL per ETH)"
    ) in situation
    rules = build_messages(DEPLOYMENT, observation)[0]["content"]
    assert '{"kind": "accept_offer", "task": OFFER_ID}' in rules
