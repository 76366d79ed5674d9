"""A swap between two agents of a cluster deployment, and the checker of how it ended.

North gives ETH on arb for south's ETH on base (a second anvil chain), all-or-nothing
through the project's HTLC on both chains. Each agent plans its side once; whichever
plans first journals the offer in the store and the other accepts it, whichever daemons
hold them (``agents/cross_chain.py``). The checker reads the plans, their steps, the
receipts and the balances, not what the daemons print.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine
from web3 import Web3

from chains.atomic.store import PlanRecord, PlanStore
from chains.connect import connect, resolve_url
from config.models import Deployment
from wallets.operator import OperatorWallets

GIVES = {"north": ("arb", Decimal("0.004")), "south": ("base", Decimal("0.005"))}
"""What each side locks for the other: (chain, ETH)."""
OTHER = {"north": "south", "south": "north"}
WEI = 10**18
BASE = {
    "name": "base",
    "family": "evm",
    "chain_id": 31338,
    "rpc": "local",
    "finality": {"confirmations": 0},
    "local": {"fund_agents": "1"},
    "htlc": "local",
}


def add_to(data: dict[str, Any], *, every: str, watcher_interval: int) -> None:
    """Add to deployment `data` (one EVM chain named arb) the second chain, an HTLC on
    both, and the two agents with their one-off plans, ticking `every`."""
    data["chains"][0]["htlc"] = "local"
    data["chains"].append(BASE)
    data["atomic"] = {
        "watcher_interval": watcher_interval,
        "slack": 10,
        "evm": {"inclusion": 5, "finality": 2},
    }
    data["assets"].append({"symbol": "ETH", "chain": "base", "native": True, "decimals": 18})
    for name, other in OTHER.items():
        data["address_book"].append({"name": name, "agent": name})
        data["planners"].append(
            {
                "name": f"{name}-swap",
                "kind": "scripted",
                "repeat": False,
                "plans": [_plan(GIVES[name], GIVES[other], other)],
            }
        )
        data["agents"].append(
            {
                "name": name,
                "schedule": {"every": every},
                "mandate": f"Swap ETH with {other}.",
                "planner": f"{name}-swap",
                "chains": ["arb", "base"],
                "counterparties": [other],
                "policies": [
                    {"Allowlist": {"recipients": [other]}},
                    {"SpendLimit": {"per_transaction": {"ETH": "0.01"}}},
                ],
            }
        )


def _plan(give: tuple[str, Decimal], take: tuple[str, Decimal], with_: str) -> dict[str, Any]:
    def leg(side: tuple[str, Decimal]) -> dict[str, str]:
        return {"chain": side[0], "asset": "ETH", "amount": str(side[1])}

    return {
        "confidence": "0.9",
        "actions": [{"kind": "swap", "counterparty": with_, "give": leg(give), "take": leg(take)}],
    }


def plans(engine: Engine) -> dict[str, PlanRecord]:
    """Each swap agent's plan (the two sides of the swap), once journaled."""
    return {plan.agent: plan for plan in PlanStore(engine).plans() if plan.agent in OTHER}


def both_locked(engine: Engine) -> bool:
    """Both legs locked and nothing claimed yet: the taker's own lock is final (it
    locked only once the maker's was) and the maker has not begun to claim it."""
    sides = {plan.kind: plan for plan in plans(engine).values()}
    maker, taker = sides.get("maker"), sides.get("taker")
    if maker is None or taker is None or taker.leg_states[1] != "locked":
        return False
    return not PlanStore(engine, maker.agent).steps(maker.plan_id, purpose="claim")


def finished(engine: Engine) -> bool:
    sides = plans(engine)
    return len(sides) == 2 and all(plan.terminal for plan in sides.values())


def balances(deployment: Deployment, wallets: OperatorWallets) -> dict[tuple[str, str], int]:
    """Each swap agent's balance on each of the two chains."""
    return asyncio.run(_balances(deployment, wallets))


async def _balances(deployment: Deployment, wallets: OperatorWallets) -> dict[tuple[str, str], int]:
    found = {}
    for chain in deployment.chains:
        if chain.name not in ("arb", "base"):
            continue
        adapter = await connect(chain, data_dir=deployment.data_dir)
        try:
            for agent in OTHER:
                found[(agent, chain.name)] = await adapter.balance(wallets.agent(agent).evm_address)
        finally:
            await adapter.close()
    return found


def _fees(deployment: Deployment, engine: Engine, plan: PlanRecord) -> dict[str, int]:
    """Wei the plan's agent paid per chain for its escrow transactions, from receipts."""
    paid = {"arb": 0, "base": 0}
    chains = {chain.name: chain for chain in deployment.chains}
    for step in PlanStore(engine, plan.agent).steps(plan.plan_id):
        if step.tx_id is None:
            continue
        chain = plan.leg(step.idx).chain
        url = resolve_url(chains[chain], deployment.data_dir)
        receipt = Web3(Web3.HTTPProvider(url)).eth.get_transaction_receipt(step.tx_id)  # type: ignore[arg-type]
        paid[chain] += int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    return paid


def assert_settled(
    engine: Engine,
    deployment: Deployment,
    before: dict[tuple[str, str], int],
    after: dict[tuple[str, str], int],
) -> str:
    """Assert the swap was claimed on both sides, each lock and each claim sent once,
    and every wei accounted for: each side lost what it locked and gained what the
    other locked, less only its own transactions' fees. A summary for the report."""
    sides = plans(engine)
    assert {plan.state for plan in sides.values()} == {"claimed"}, sides
    assert {plan.kind for plan in sides.values()} == {"maker", "taker"}
    assert len({plan.plan_id for plan in sides.values()}) == 1  # one swap, two sides
    steps = {}
    for agent, plan in sides.items():
        ours = 0 if plan.kind == "maker" else 1
        done = [(s.idx, s.purpose, s.status) for s in PlanStore(engine, agent).steps(plan.plan_id)]
        assert [s for s in done if s[1] == "lock"] == [(ours, "lock", "final")], done
        assert [s for s in done if s[1] == "claim"] == [(1 - ours, "claim", "final")], done
        steps[agent] = done
    fees = {agent: _fees(deployment, engine, plan) for agent, plan in sides.items()}
    expected = {}
    for agent, other in OTHER.items():
        (gives_on, gives), (gets_on, gets) = GIVES[agent], GIVES[other]
        expected[(agent, gives_on)] = -int(gives * WEI) - fees[agent][gives_on]
        expected[(agent, gets_on)] = int(gets * WEI) - fees[agent][gets_on]
    assert {key: after[key] - before[key] for key in before} == expected
    kinds = {agent: plan.kind for agent, plan in sides.items()}
    return f"swap {kinds} claimed on both sides, steps {steps}"
