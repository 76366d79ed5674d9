"""All-or-nothing actions through the daemon: the runtime's agents plan a swap and a
multi-chain payment, the policies judge each escrow lock, and the HTLCs on two anvil
chains and the LiteSVM RPC server settle them. Balances reconcile exactly, fees
included; every tick's audit entry verifies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from web3 import Web3

import main
from agents import cross_chain, gate
from agents.app.runtime import Runtime, open_runtime
from agents.audit import verify as verify_audit
from agents.audit.tables import entries as audit_entries
from agents.plan import Plan
from agents.planners.base import Planner
from agents.planners.types import Observation, PlanResult
from chains.connect import resolve_url
from chains.devnet import manager as devnet
from chains.families.evm._anvil import anvil_path
from chains.families.solana.htlc_client import ESCROW_LEN
from config.loader import load_deployment
from config.models import Deployment
from policies.actions import ConfidenceEvidence, Intent, ProposedAction, Receives
from wallets.operator import create_keystore

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

MNEMONIC = "test test test test test test test test test test test junk"
PASSPHRASE = "atomic runtime tests passphrase"
ACME_EVM = "0x1111111111111111111111111111111111111111"  # no agent of the mnemonic
ACME_SOL = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
ETH, SOL = 10**18, 10**9


def _swap(give: tuple[str, str, str], take: tuple[str, str, str], with_: str) -> dict[str, Any]:
    def leg(side: tuple[str, str, str]) -> dict[str, str]:
        return {"chain": side[0], "asset": side[1], "amount": side[2]}

    return {
        "confidence": "0.9",
        "actions": [{"kind": "swap", "counterparty": with_, "give": leg(give), "take": leg(take)}],
    }


PAY_TWO_CHAINS = {
    "confidence": "0.9",
    "actions": [
        {
            "kind": "pay_many",
            "legs": [
                {"chain": "arb", "asset": "ETH", "amount": "0.01", "counterparty": "acme"},
                {"chain": "sol", "asset": "SOL", "amount": "0.5", "counterparty": "acme"},
            ],
        }
    ],
}


def _policies(recipients: list[str], limits: dict[str, str]) -> list[Any]:
    return [
        {"KillSwitch": {}},
        {"ConfidenceBreaker": {"min_confidence": "0.6", "cooldown": "5m"}},
        {"Allowlist": {"recipients": recipients}},
        {"SpendLimit": {"per_transaction": limits}},
        {"DuplicateGuard": {}},
        {
            "SwapRate": {
                "floors": [
                    {"give": "ETH", "take": "SOL", "at_least": "20"},
                    {"give": "SOL", "take": "ETH", "at_least": "0.05"},
                ]
            }
        },
    ]


def _write(tmp_path: Path) -> Path:
    chain = {"rpc": "local", "local": {"fund_agents": "10"}, "htlc": "local"}
    data: dict[str, Any] = {
        "name": "atomic-rt",
        "data_dir": str(tmp_path / "data"),
        "operator": {"name": "op"},
        "chains": [
            # anvil mines only on demand: final at inclusion, as in the demo.
            {
                "name": "arb",
                "family": "evm",
                "chain_id": 31337,
                "finality": {"confirmations": 0},
                **chain,
            },
            {"name": "sol", "family": "solana", "cluster": "localnet", **chain},
        ],
        "atomic": {
            "watcher_interval": 1,
            "slack": 5,
            "evm": {"inclusion": 5, "finality": 2},
            "solana": {"inclusion": 5, "finality": 2, "halt_allowance": 0},
        },
        "assets": [
            {"symbol": "ETH", "chain": "arb", "native": True, "decimals": 18},
            {"symbol": "SOL", "chain": "sol", "native": True, "decimals": 9},
        ],
        "address_book": [
            {"name": "acme", "addresses": {"arb": ACME_EVM, "sol": ACME_SOL}},
            {"name": "maker", "agent": "maker"},
            {"name": "taker", "agent": "taker"},
        ],
        "planners": [
            {
                "name": "make",
                "kind": "scripted",
                "repeat": False,
                "plans": [_swap(("arb", "ETH", "0.1"), ("sol", "SOL", "2"), "taker")],
            },
            {
                "name": "take",
                "kind": "scripted",
                "repeat": False,
                "plans": [_swap(("sol", "SOL", "2"), ("arb", "ETH", "0.1"), "maker")],
            },
            {"name": "pay", "kind": "scripted", "repeat": False, "plans": [PAY_TWO_CHAINS]},
        ],
        "agents": [
            {
                "name": "maker",
                "schedule": {"every": "1h"},
                "mandate": "Swap ETH for SOL.",
                "planner": "make",
                "chains": ["arb", "sol"],
                "counterparties": ["taker"],
                "policies": _policies(["taker"], {"ETH": "1"}),
            },
            {
                "name": "taker",
                "schedule": {"every": "1h"},
                "mandate": "Take fair swaps.",
                "planner": "take",
                "chains": ["arb", "sol"],
                "counterparties": ["maker"],
                "policies": _policies(["maker"], {"SOL": "5"}),
            },
            {
                "name": "payer",
                "schedule": {"every": "1h"},
                "mandate": "Pay acme on both chains.",
                "planner": "pay",
                "chains": ["arb", "sol"],
                "counterparties": ["acme"],
                "policies": _policies(["acme"], {"ETH": "0.05", "SOL": "1"}),
            },
        ],
    }
    file = tmp_path / "atomic.yaml"
    file.write_text(yaml.safe_dump(data))
    return file


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    if anvil_path() is None:
        pytest.skip("anvil not installed: run `npm ci` (scripts/setup.sh does)")
    deployment = load_deployment(_write(tmp_path))
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    await devnet.up(deployment)
    try:
        yield deployment
    finally:
        devnet.down(deployment)


async def _balances(runtime: Runtime, owners: dict[str, tuple[str, str]]) -> dict[str, int]:
    """Balance per label of (chain, address)."""
    return {
        label: await runtime.adapters[chain].balance(address)
        for label, (chain, address) in owners.items()
    }


def _addresses(runtime: Runtime, agent: str) -> dict[str, str]:
    wallet = runtime.wallets.agent(agent)
    return {"arb": wallet.evm_address, "sol": wallet.solana_address}


def _evm_fees(deployment: Deployment, runtime: Runtime, agent: str) -> int:
    """Wei `agent` paid for its escrow transactions on arb, from their receipts."""
    assert runtime.desk is not None
    coordinator = runtime.desk.coordinators[agent]
    w3 = Web3(Web3.HTTPProvider(resolve_url(deployment.chains[0], deployment.data_dir)))
    total = 0
    for plan in coordinator.store.plans(agent=agent):
        for step in coordinator.store.steps(plan.plan_id):
            if plan.leg(step.idx).chain == "arb" and step.tx_id is not None:
                receipt = w3.eth.get_transaction_receipt(step.tx_id)  # type: ignore[arg-type]
                total += int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    return total


async def test_a_swap_and_a_two_chain_payment_settle_and_reconcile(deployment, monkeypatch, capsys):
    async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
        who = {name: _addresses(runtime, name) for name in ("maker", "taker", "payer")}
        owners = {
            f"{name}-{chain}": (chain, addresses[chain])
            for name, addresses in who.items()
            for chain in ("arb", "sol")
        }
        owners |= {"acme-arb": ("arb", ACME_EVM), "acme-sol": ("sol", ACME_SOL)}
        sol = runtime.adapters["sol"]
        rent = await sol.minimum_rent(ESCROW_LEN)  # type: ignore[attr-defined]
        lock_fee, claim_fee = sol.fee(2), sol.fee(1)  # type: ignore[attr-defined]
        before = await _balances(runtime, owners)
        await runtime.run(max_ticks=1)
        after = await _balances(runtime, owners)
        assert runtime.desk is not None
        plans = {
            (plan.agent, plan.kind, plan.state)
            for coordinator in runtime.desk.coordinators.values()
            for plan in coordinator.store.plans(agent=coordinator.party.name)
        }
        gas = {name: _evm_fees(deployment, runtime, name) for name in who}
        states = {
            name: [result.state for report in agent.reports for result in report.results]
            for name, agent in runtime.agents.items()
        }
        audits = {name: verify_audit(runtime.store, name).ok for name in runtime.agents}
    assert states == {"maker": ["started"], "taker": ["started"], "payer": ["started"]}
    assert plans == {
        ("maker", "maker", "claimed"),
        ("taker", "taker", "claimed"),
        ("payer", "plan", "claimed"),
    }
    change = {label: after[label] - before[label] for label in owners}
    # ETH: the maker locked 0.1 for the taker, who claimed it; the payer locked and
    # claimed 0.01 for acme. Each paid the gas of its own transactions.
    assert change["maker-arb"] == -ETH // 10 - gas["maker"]
    assert change["taker-arb"] == ETH // 10 - gas["taker"]
    assert change["payer-arb"] == -ETH // 100 - gas["payer"]
    assert change["acme-arb"] == ETH // 100
    # SOL: a lock pays the amount, the escrow's rent and two signatures; a claim empties
    # the escrow (amount and rent) to the recipient and pays one signature.
    assert change["taker-sol"] == -2 * SOL - rent - lock_fee
    assert change["maker-sol"] == 2 * SOL + rent - claim_fee
    assert change["payer-sol"] == -SOL // 2 - rent - lock_fee - claim_fee
    assert change["acme-sol"] == SOL // 2 + rent
    assert audits == {"maker": True, "taker": True, "payer": True}
    # `status`, from the store alone, shows what each agent last observed.
    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    capsys.readouterr()
    file = Path(deployment.data_dir or ".").parent / "atomic.yaml"
    assert main.main(["status", str(file)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "payer" in line]
    assert any("10 ETH on arb, 10 SOL on sol" in row for row in rows), rows


class AcceptsEveryOffer(Planner):
    """A planner that accepts each offer task it sees, by id (what a model writes with
    accept_offer), and remembers what it saw."""

    def __init__(self) -> None:
        self.seen: list[Observation] = []

    async def plan(self, observation: Observation) -> PlanResult:
        self.seen.append(observation)
        offers = [t.id for t in observation.tasks if t.kind == "offer"]
        plan = Plan.model_validate(
            {"actions": [{"kind": "accept_offer", "task": i} for i in offers]}
        )
        evidence = ConfidenceEvidence(self_reported=1, sample_agreement=1, samples=3)
        return PlanResult(plan=plan, evidence=evidence)


async def test_an_offer_the_taker_accepts_by_id_settles_and_is_never_offered_again(
    deployment, monkeypatch
):
    judged: list[ProposedAction] = []  # each escrow lock, as the policies judged it

    async def authorize_lock(engine: Any, action: ProposedAction, ctx: Any) -> Any:
        judged.append(action)
        return await gate.authorize_lock(engine, action, ctx)

    monkeypatch.setattr(cross_chain, "authorize_lock", authorize_lock)
    async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
        taker = runtime.agents["taker"]
        taker.planner = AcceptsEveryOffer()
        await runtime.agents["maker"].tick()  # offers; its scripted plans then run out
        await runtime.run(max_ticks=1)
        assert runtime.desk is not None
        plans = {
            (plan.agent, plan.state)
            for coordinator in runtime.desk.coordinators.values()
            for plan in coordinator.store.plans(agent=coordinator.party.name)
            if plan.kind in ("maker", "taker")
        }
        (seen,) = taker.planner.seen
        (task,) = [t for t in seen.tasks if t.kind == "offer"]
        # The taker's side: it gives the SOL the maker asked for and gets its ETH.
        assert (task.source, task.payee) == ("desk", "maker")
        assert task.give is not None
        assert task.take is not None
        assert (task.give.chain, task.give.asset, task.give.amount) == ("sol", "SOL", Decimal(2))
        assert (task.take.chain, task.take.asset, task.take.amount) == (
            "arb",
            "ETH",
            Decimal("0.1"),
        )
        (result,) = [r for report in taker.reports for r in report.results]
        # SwapRate judged the taker's lock by what it gets back: the offer's other leg.
        (lock,) = [action for action in judged if action.agent == "taker"]
        assert lock.receives == Receives(chain="arb", asset="ETH", amount=Decimal("0.1"))
        # The taker's lock was judged as a swap leg naming the offer: DuplicateGuard now
        # sets it aside. Negative control: another offer id of the same legs is not.
        leg = {"agent": "taker", "kind": "swap_leg", "chain": "sol", "asset": "SOL"}
        same = Intent(**leg, amount=2, recipient="maker", task=task.reference)
        other = Intent(**leg, amount=2, recipient="maker", task="desk/another-offer")
        settled, fresh = runtime.engine.screen(same), runtime.engine.screen(other)
    assert result.state == "started", result.summary
    assert plans == {("maker", "claimed"), ("taker", "claimed")}
    assert settled is not None
    assert settled.startswith("DuplicateGuard:")
    assert fresh is None


async def test_two_agents_offering_each_other_one_swap_at_once_settle_it_once(
    deployment, monkeypatch
):
    """In cluster mode two daemons may each journal an offer before either sees the
    other's (the mirror images). The maker with the greater DID takes the other's offer
    and cancels its own; the one swap then settles."""
    async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
        desk = runtime.desk
        assert desk is not None
        with monkeypatch.context() as at_once:  # neither sees the other's offer yet
            at_once.setattr(desk, "_matching_offer", lambda *args: None)
            for name in ("maker", "taker"):
                await runtime.agents[name].tick()
        offered = {(plan.agent, plan.kind, plan.state) for plan in desk.open_plans()}
        # Locks planned here and not judged yet: in cluster mode neither agent may be
        # handed to another daemon now (that daemon could not lock for them).
        pinned = [desk.holds_unjudged_lock(name) for name in ("maker", "taker")]
        await desk.settle(timeout=60)
        released = [desk.holds_unjudged_lock(name) for name in ("maker", "taker")]
        plans = {
            (plan.agent, plan.kind, plan.state)
            for coordinator in desk.coordinators.values()
            for plan in coordinator.store.plans(agent=coordinator.party.name)
        }
        greater, smaller = sorted(
            ("maker", "taker"), key=lambda name: runtime.wallets.agent(name).did, reverse=True
        )
        ended = {
            name: [
                record.body["plan_ended"]
                for record in audit_entries(runtime.store, name)
                if "plan_ended" in record.body
            ]
            for name in ("maker", "taker")
        }
    assert offered == {("maker", "maker", "offered"), ("taker", "maker", "offered")}
    assert pinned == [True, True]
    assert released == [False, False]
    # How each side's swap ended is in its audit log, as an entry of its own.
    for name in ("maker", "taker"):
        (end,) = ended[name]
        assert end["ok"] is True
        assert "claimed" in end["summary"]
    assert plans == {
        (greater, "maker", "cancelled"),
        (greater, "taker", "claimed"),
        (smaller, "maker", "claimed"),
    }


async def _start_payment(deployment: Deployment, *, lock: bool) -> str:
    """A daemon whose payer starts its two-chain plan (and, if `lock`, locks both legs)
    and then stops before its watchtower settles anything; the plan id."""
    async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
        assert runtime.desk is not None
        report = await runtime.agents["payer"].tick()
        assert [result.state for result in report.results] == ["started"]
        (plan,) = runtime.desk.open_plans()
        coordinator = runtime.desk.coordinators["payer"]
        for leg in plan.legs if lock else ():
            outcome = await coordinator.ensure_locked(coordinator.store.get(plan.plan_id), leg)
            assert outcome == ("done", None)
        return plan.plan_id


async def _recover(deployment: Deployment, plan_id: str, monkeypatch: Any, capsys: Any) -> Any:
    """`swaps recover` in a new runtime until nothing is open; the plan as it ended."""
    monkeypatch.setenv("COVENANT_PASSPHRASE", PASSPHRASE)
    file = Path(deployment.data_dir or ".").parent / "atomic.yaml"
    for _ in range(10):
        assert await asyncio.to_thread(main.main, ["swaps", "recover", str(file)]) == 0
        if "0 plan(s) still open" in capsys.readouterr().out:
            break
    async with open_runtime(deployment, PASSPHRASE) as runtime:
        assert runtime.desk is not None
        return runtime.desk.coordinators["payer"].store.get(plan_id)


async def test_swaps_recover_claims_what_a_stopped_daemon_locked(deployment, monkeypatch, capsys):
    # The locks were authorized by the stopped daemon's engine; its grant is in the
    # store, so the new runtime's engine authorizes the claims.
    plan_id = await _start_payment(deployment, lock=True)
    ended = await _recover(deployment, plan_id, monkeypatch, capsys)
    assert (ended.state, ended.leg_states) == ("claimed", ("claimed", "claimed")), ended.reason


async def test_swaps_recover_winds_down_a_plan_never_locked(deployment, monkeypatch, capsys):
    # What a plan's locks were to be is judged with the plan's confidence evidence, which
    # lived only in the stopped daemon: the new one locks nothing and cancels the plan.
    plan_id = await _start_payment(deployment, lock=False)
    file = Path(deployment.data_dir or ".").parent / "atomic.yaml"
    capsys.readouterr()
    assert main.main(["status", str(file)]) == 0  # another process's view of the store
    shown = capsys.readouterr().out
    assert f"open plan payer plan {plan_id}" in shown, shown
    assert "closed" in shown  # the breaker states
    ended = await _recover(deployment, plan_id, monkeypatch, capsys)
    assert ended.state == "cancelled"
    assert "no planned action behind it" in (ended.reason or "")
    assert set(ended.leg_states) == {"never"}, ended.leg_states
