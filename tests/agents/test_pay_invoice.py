"""``pay_invoice``: the model names an invoice it sees; amount and payee come from the
invoice; DuplicateGuard pays each invoice once (agents/actions/pay_invoice.py).

The end-to-end tests run the real runtime on an in-process EVM chain with a real task
file, policy engine, signer and audit log; only the model is scripted.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agents.app.runtime import Runtime, open_runtime
from agents.audit import verify as verify_audit
from agents.plan import InvalidPlan, plan_schema, validate_plan
from agents.planners._prompt import build_messages
from agents.planners.base import ModelPlanner
from agents.planners.types import ChatMessage, Completion
from agents.tasks import Task
from config.loader import load_deployment
from config.models import Deployment
from main import app
from tests.agents.conftest import deployment_data, in_process_evm_chain, make_observation
from wallets.operator import create_keystore

DEPLOYMENT = Deployment.model_validate(deployment_data())
ACME = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
MNEMONIC = "test test test test test test test test test test test junk"
PASSPHRASE = "pay invoice tests passphrase"


def invoice(task_id: str, **fields: Any) -> Task:
    given = {"payee": "acme", "chain": "arb", "asset": "ETH", "amount": Decimal("0.05")}
    return Task(id=task_id, source="inbox", **{**given, **fields})


def pay(task_id: str) -> dict[str, Any]:
    return {"actions": [{"kind": "pay_invoice", "task": task_id}], "confidence": "0.9"}


def invoice_enum(schema: dict[str, Any]) -> list[str]:
    variants = schema["properties"]["actions"]["items"]["anyOf"]
    (paying,) = [v for v in variants if v["properties"]["kind"] == {"const": "pay_invoice"}]
    return list(paying["properties"]["task"]["enum"])


def test_the_schema_offers_exactly_the_invoices_the_agent_could_pay() -> None:
    tasks = (
        invoice("ok-eth"),
        invoice("ok-usdc", asset="USDC", amount=Decimal("12.5")),
        invoice("to-self", payee="alice"),  # an agent never pays itself
        invoice("unknown-payee", payee="mallory"),
        invoice("off-chain", chain="base"),  # alice does not act on base
        invoice("too-precise", asset="USDC", amount=Decimal("0.0000001")),  # 6 decimals
        invoice("no-amount", amount=None),
        Task(id="a-task", kind="task", source="inbox", memo="tidy up"),
    )
    assert invoice_enum(plan_schema(DEPLOYMENT, "alice", tasks)) == ["ok-eth", "ok-usdc"]
    # Negative control: with no invoice there is no pay_invoice variant at all.
    variants = plan_schema(DEPLOYMENT, "alice", ())["properties"]["actions"]["items"]["anyOf"]
    assert {"const": "pay_invoice"} not in [v["properties"]["kind"] for v in variants]


def test_a_plan_naming_an_invoice_not_seen_or_not_payable_is_refused() -> None:
    tasks = (invoice("inv-1"), invoice("inv-2", payee="mallory"))
    assert validate_plan(pay("inv-1"), DEPLOYMENT, "alice", tasks).actions[0].task == "inv-1"
    with pytest.raises(InvalidPlan, match=r"no open invoice 'inv-9'; open ones: inv-1, inv-2"):
        validate_plan(pay("inv-9"), DEPLOYMENT, "alice", tasks)
    with pytest.raises(InvalidPlan, match=r"actions\.0\.task: .*unknown counterparty 'mallory'"):
        validate_plan(pay("inv-2"), DEPLOYMENT, "alice", tasks)
    # The same invoice named three times is paid once; two invoices stay two.
    thrice = {"actions": [pay("inv-1")["actions"][0]] * 3}
    assert len(validate_plan(thrice, DEPLOYMENT, "alice", tasks).actions) == 1
    both = {"actions": [*pay("inv-1")["actions"], *pay("inv-3")["actions"]]}
    assert len(validate_plan(both, DEPLOYMENT, "alice", (*tasks, invoice("inv-3"))).actions) == 2
    # Negative control: a transfer is not idempotent, so two stay two (the policies judge).
    transfer = {"kind": "transfer", "chain": "arb", "asset": "ETH", "amount": "1"}
    two = {"actions": [{**transfer, "counterparty": "acme"}] * 2}
    assert len(validate_plan(two, DEPLOYMENT, "alice").actions) == 2
    # A scripted plan is checked before any task is seen: for its shape only.
    assert validate_plan(pay("inv-9"), DEPLOYMENT, "alice").actions[0].task == "inv-9"


def narrowed(actions: list[str]) -> Deployment:
    data = deployment_data()
    data["agents"][0]["actions"] = actions
    return Deployment.model_validate(data)


def test_an_agent_limited_to_invoices_gets_only_that_schema_and_prompt() -> None:
    deployment, tasks = narrowed(["pay_invoice"]), (invoice("inv-1"),)
    schema = plan_schema(deployment, "alice", tasks)
    kinds = [v["properties"]["kind"] for v in schema["properties"]["actions"]["items"]["anyOf"]]
    assert kinds == [{"const": "pay_invoice"}]
    rules = build_messages(deployment, make_observation(tasks=tasks))[0]["content"]
    assert '"kind": "pay_invoice"' in rules
    assert '"kind": "transfer"' not in rules
    transfer = {"kind": "transfer", "chain": "arb", "asset": "ETH", "amount": "1"}
    with pytest.raises(InvalidPlan, match="alice may not plan transfer; its actions are"):
        validate_plan({"actions": [{**transfer, "counterparty": "acme"}]}, deployment, "alice")
    # Negative control: the same plan is fine for an agent with every kind.
    validate_plan({"actions": [{**transfer, "counterparty": "acme"}]}, DEPLOYMENT, "alice")


def test_config_validate_refuses_an_unknown_action_kind(tmp_path: Path) -> None:
    data = deployment_data()
    data["agents"][0]["actions"] = ["pay_invoice", "burn"]
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    output = " ".join(f"{result.output}{result.exception or ''}".split())
    assert result.exit_code != 0
    assert "agents[0].actions[1]: unknown action kind 'burn'; use one of:" in output


# -- end to end ------------------------------------------------------------------------


def write_deployment(tmp_path: Path, plans: list[dict[str, Any]]) -> Path:
    evm = in_process_evm_chain(tmp_path, "inv", fund="10")
    chain = evm["name"]
    data = {
        "name": "inv",
        "operator": {"name": "op"},
        "chains": [evm],
        "assets": [
            {"symbol": "ETH", "chain": chain, "native": True, "decimals": 18, "usd_price": "3000"}
        ],
        "address_book": [{"name": "acme", "addresses": {chain: ACME}}],
        "planners": [{"name": "script", "kind": "scripted", "plans": plans}],
        "agents": [
            {
                "name": "payer",
                "schedule": {"every": "1h"},
                "mandate": "Pay acme's invoices.",
                "planner": "script",
                "chains": [chain],
                "actions": ["pay_invoice"],
                "sources": [{"TaskFile": {"path": "inbox.yaml"}}],
                "policies": [
                    {"ConfidenceBreaker": {"min_confidence": "0.6"}},
                    {"Allowlist": {"recipients": ["acme"]}},
                    {"DuplicateGuard": {"within": "24h"}},
                    {"SpendLimit": {"per_transaction": {"ETH": "0.1"}}},
                ],
            }
        ],
    }
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def write_inbox(tmp_path: Path, chain: str, invoices: dict[str, str]) -> None:
    tasks = [
        {"id": task_id, "payee": "acme", "chain": chain, "asset": "ETH", "amount": amount}
        for task_id, amount in invoices.items()
    ]
    (tmp_path / "inbox.yaml").write_text(json.dumps(tasks))


async def balance(runtime: Runtime) -> int:
    (adapter,) = runtime.adapters.values()
    return await adapter.balance(ACME)


async def test_an_invoice_is_paid_once_for_its_own_amount_and_a_twin_is_paid_too(
    tmp_path: Path,
) -> None:
    plans = [pay("inv-1"), pay("inv-1"), pay("inv-1"), pay("inv-2"), pay("inv-9")]
    deployment = load_deployment(write_deployment(tmp_path, plans))
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    chain = deployment.chains[0].name
    write_inbox(tmp_path, chain, {"inv-1": "0.05"})
    async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
        payer, before = runtime.agents["payer"], await balance(runtime)
        first = await payer.tick()
        (paid,) = first.results
        assert paid.state == "executed", first.headline()
        assert paid.action is not None
        assert paid.action.task == "TaskFile/inv-1"
        assert await balance(runtime) - before == 5 * 10**16  # the invoice's amount

        # Whoever writes the inbox edits the paid invoice and adds a twin of it. The
        # paid one is no longer open for this agent: the model is not offered it.
        write_inbox(tmp_path, chain, {"inv-1": "0.07", "inv-2": "0.05"})
        (gone,) = (await payer.tick()).results
        assert payer.last_observation is not None
        assert [task.id for task in payer.last_observation.tasks] == ["inv-2"]
        assert gone.state == "error"
        assert "invoice inv-1 is not open any more" in gone.summary

    # After a restart the agent's memory is gone; DuplicateGuard's is not, and its
    # screen sets the paid invoice aside before the planner sees it.
    async with open_runtime(deployment, PASSPHRASE) as runtime:
        payer = runtime.agents["payer"]
        (again,) = (await payer.tick()).results
        assert payer.last_observation is not None
        assert [task.id for task in payer.last_observation.tasks] == ["inv-2"]
        (aside,) = payer.last_observation.set_aside
        assert aside.task == "TaskFile/inv-1"
        assert aside.reason.startswith("DuplicateGuard: TaskFile/inv-1 was settled at")
        assert again.state == "error"
        assert "invoice inv-1 is not open any more" in again.summary

        # The twin, of the same amount to the same payee, is its own payment.
        (twin,) = (await payer.tick()).results
        assert twin.state == "executed", twin.summary
        assert await balance(runtime) - before == 10 * 10**16

        # An invoice that is not in the inbox pays nothing.
        (missing,) = (await payer.tick()).results
        assert missing.state == "error"
        assert await balance(runtime) - before == 10 * 10**16
        assert verify_audit(runtime.store, "payer").ok
    # The audit log reads back through each kind's own description.
    shown = CliRunner().invoke(app, ["audit", "show", str(tmp_path / "inv.yaml"), "payer"])
    assert shown.exit_code == 0, shown.output
    assert "pay invoice inv-1" in shown.output
    assert "pay invoice inv-2" in shown.output


class CountingModel(ModelPlanner):
    """A model that answers every call with an empty plan and counts the calls."""

    def __init__(self, deployment: Deployment) -> None:
        super().__init__(deployment, "alice", samples=2)
        self.calls = 0

    async def complete(self, messages: list[ChatMessage], schema: dict[str, Any]) -> Completion:
        self.calls += 1
        return Completion(text='{"rationale": "", "actions": [], "confidence": "0.5"}')


async def test_with_nothing_to_choose_no_model_is_asked_and_the_breaker_is_not_fed_doubt() -> None:
    model = CountingModel(narrowed(["pay_invoice"]))
    result = await model.plan(make_observation())
    assert model.calls == 0
    assert result.plan.actions == ()
    assert result.model_calls == 0
    assert result.evidence.score == 1
    # Negative control: with an invoice to choose, the model is asked (k samples).
    await model.plan(make_observation(tasks=(invoice("inv-1"),)))
    assert model.calls == 2
