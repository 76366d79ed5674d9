"""Tasks the agent cannot act on now are set aside before the model is asked
(agents/screen.py): by the balance, and by each policy's side-effect-free screen, with
the real PolicyEngine and the built-in policies. Each case has its negative control: the
same task, changed only in what makes it unpayable, is kept."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from agents.planners.types import Balance, Observation
from agents.screen import screened
from agents.tasks import Task
from config.models import Deployment
from policies import Authorized, PolicyEngine, ProposedAction
from policies.testing import make_evidence
from tests.agents.conftest import ACME_EVM, deployment_data, make_observation

ETH = (Balance(chain="arb", asset="ETH", amount=Decimal(1)),)


def guarded() -> Deployment:
    data = deployment_data()
    data["agents"][0]["policies"] = [
        {"Allowlist": {"recipients": ["acme", "bob"]}},
        {"SpendLimit": {"per_transaction": {"ETH": "0.1", "SOL": "5"}, "unlisted": "allow"}},
        {"DuplicateGuard": {}},
    ]
    data["address_book"].append({"name": "initech", "addresses": {"arb": "0x" + "11" * 20}})
    return Deployment.model_validate(data)


def invoice(task_id: str, **fields: Any) -> Task:
    given = {"payee": "acme", "chain": "arb", "asset": "ETH", "amount": Decimal("0.05")}
    return Task(id=task_id, source="inbox", **{**given, **fields})


def offer(task_id: str, give: str = "0.1", payee: str = "bob") -> Task:
    return Task.model_validate(
        {
            "id": task_id,
            "kind": "offer",
            "source": "desk",
            "payee": payee,
            "give": {"chain": "arb", "asset": "ETH", "amount": give},
            "take": {"chain": "sol", "asset": "SOL", "amount": "2"},
        }
    )


def screen(engine: PolicyEngine, *tasks: Task, balances: Any = ETH) -> Observation:
    return screened(make_observation(balances=balances, tasks=tasks), engine.screen)


def kept_and_aside(observation: Observation) -> tuple[list[str], dict[str, str]]:
    aside = {item.task: item.reason for item in observation.set_aside}
    return [task.id for task in observation.tasks], aside


def test_an_invoice_or_offer_the_balance_cannot_cover_is_set_aside() -> None:
    engine = PolicyEngine(guarded())
    short = (Balance(chain="arb", asset="ETH", amount=Decimal("0.01")),)
    kept, aside = kept_and_aside(screen(engine, invoice("inv-1"), offer("off-1"), balances=short))
    assert kept == []
    assert aside["inbox/inv-1"] == "balance 0.01 ETH on arb is below 0.05"
    assert aside["desk/off-1"] == "balance 0.01 ETH on arb is below 0.1"
    # Negative control: enough ETH, and both are offered. An unknown balance keeps them.
    assert kept_and_aside(screen(engine, invoice("inv-1"), offer("off-1")))[0] == [
        "inv-1",
        "off-1",
    ]
    assert kept_and_aside(screen(engine, invoice("inv-1"), balances=()))[0] == ["inv-1"]


def test_a_payee_off_the_allowlist_or_an_amount_over_the_limit_is_set_aside() -> None:
    engine = PolicyEngine(guarded())
    tasks = (
        invoice("inv-1", payee="initech"),
        invoice("inv-2", amount=Decimal("0.5")),
        offer("off-1", give="0.2"),
        invoice("inv-3"),
        offer("off-2"),
        Task(id="task-1", kind="task", source="inbox", memo="review the price list"),
    )
    kept, aside = kept_and_aside(screen(engine, *tasks))
    assert kept == ["inv-3", "off-2", "task-1"]
    assert aside == {
        "inbox/inv-1": "Allowlist: recipient 'initech' is not in the allowlist (default deny)",
        "inbox/inv-2": "SpendLimit: 0.5 ETH is above the per-transaction limit 0.1",
        "desk/off-1": "SpendLimit: 0.2 ETH is above the per-transaction limit 0.1",
    }


async def test_a_settled_task_is_set_aside_and_a_failed_one_is_offered_again() -> None:
    engine = PolicyEngine(guarded())
    action = ProposedAction(
        agent="alice",
        plan_id="p1",
        kind="transfer",
        chain="arb",
        asset="ETH",
        amount=Decimal("0.05"),
        amount_base_units=5 * 10**16,
        recipient="acme",
        recipient_address=ACME_EVM,
        digest=hashlib.sha256(b"p1").digest(),
        task="inbox/inv-1",
    )
    # Negative control first: screening changes nothing, so before the payment it is
    # offered however often it is screened, and the payment is then authorized.
    for _ in range(3):
        assert kept_and_aside(screen(engine, invoice("inv-1")))[0] == ["inv-1"]
    ctx = engine.context("alice", plan_id="p1", evidence=make_evidence())
    assert isinstance(await engine.evaluate(action, ctx), Authorized)
    await engine.executed(action, ctx)
    kept, aside = kept_and_aside(screen(engine, invoice("inv-1"), invoice("inv-2")))
    assert kept == ["inv-2"]  # an invoice of the same amount is its own payment
    assert aside["inbox/inv-1"].startswith("DuplicateGuard: inbox/inv-1 was settled at ")
    # A payment that failed does not settle its invoice: it is offered again.
    await engine.failed(action, ctx, "reverted")
    assert kept_and_aside(screen(engine, invoice("inv-1")))[0] == ["inv-1"]
