"""USDC through the daemon: a swap of the local USDC on anvil for SOL between two agents,
and a payment of USDC and SOL all-or-nothing. Each token lock is preceded by an approval
the policies judge as the lock (SpendLimit in USDC), the token balances and the ether
paid in gas reconcile exactly, and no allowance is left behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from web3 import Web3

from agents.app.runtime import open_runtime
from chains.connect import resolve_url
from chains.devnet import manager as devnet
from chains.families.evm._anvil import anvil_path
from chains.families.evm.devnet import LOCAL_EVM_HTLC, local_token_address
from chains.families.solana.local_token import local_mint
from config.loader import load_deployment
from config.models import Deployment
from tests.agents.test_runtime_atomic import (
    ACME_EVM,
    MNEMONIC,
    PASSPHRASE,
    _evm_fees,
    _policies,
    _swap,
    _write,
)
from wallets.operator import create_keystore

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
USDC = 10**6


def _with_usdc(tmp_path: Path, maker_limit: str = "60") -> Path:
    file = _write(tmp_path)
    data: dict[str, Any] = yaml.safe_load(file.read_text())
    data["assets"].append({"symbol": "USDC", "chain": "arb", "erc20": "local", "decimals": 6})
    data["chains"][0]["local"]["fund_tokens"] = "1000"
    planners = {planner["name"]: planner for planner in data["planners"]}
    planners["make"]["plans"] = [_swap(("arb", "USDC", "50"), ("sol", "SOL", "2"), "taker")]
    planners["take"]["plans"] = [_swap(("sol", "SOL", "2"), ("arb", "USDC", "50"), "maker")]
    pay = planners["pay"]["plans"][0]["actions"][0]["legs"]
    pay[0].update({"asset": "USDC", "amount": "12.5"})
    agents = {agent["name"]: agent for agent in data["agents"]}
    floors = [
        {"give": "USDC", "take": "SOL", "at_least": "0.04"},
        {"give": "SOL", "take": "USDC", "at_least": "25"},
    ]
    for name, recipients, limits in (
        ("maker", ["taker"], {"USDC": maker_limit}),
        ("taker", ["maker"], {"SOL": "5"}),
        ("payer", ["acme"], {"USDC": "20", "SOL": "1"}),
    ):
        policies = _policies(recipients, limits)
        policies[-1] = {"SwapRate": {"floors": floors}}
        agents[name]["policies"] = policies
    file.write_text(yaml.safe_dump(data))
    return file


@pytest.fixture(params=["60"])
async def deployment(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Deployment]:
    if anvil_path() is None:
        pytest.skip("anvil not installed: run `npm ci` (scripts/setup.sh does)")
    deployment = load_deployment(_with_usdc(tmp_path, request.param))
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    await devnet.up(deployment)
    try:
        yield deployment
    finally:
        devnet.down(deployment)


async def test_usdc_swap_and_payment_settle_with_exact_balances(deployment):
    token = local_token_address("USDC")
    w3 = Web3(Web3.HTTPProvider(resolve_url(deployment.chains[0], deployment.data_dir)))

    def allowance(owner: str) -> int:
        data = Web3.keccak(text="allowance(address,address)")[:4] + b"".join(
            bytes(12) + bytes.fromhex(a[2:]) for a in (owner, LOCAL_EVM_HTLC)
        )
        return int.from_bytes(w3.eth.call({"to": token, "data": data}), "big")

    async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
        arb = runtime.adapters["arb"]
        evm = {name: runtime.wallets.agent(name).evm_address for name in runtime.agents}
        owners = {**evm, "acme": ACME_EVM}
        usdc_before = {label: await arb.balance(a, token) for label, a in owners.items()}
        eth_before = {label: await arb.balance(a) for label, a in evm.items()}
        await runtime.run(max_ticks=1)
        usdc_after = {label: await arb.balance(a, token) for label, a in owners.items()}
        eth_after = {label: await arb.balance(a) for label, a in evm.items()}
        assert runtime.desk is not None
        plans = {
            (plan.agent, plan.kind, plan.state)
            for coordinator in runtime.desk.coordinators.values()
            for plan in coordinator.store.plans(agent=coordinator.party.name)
        }
        approvals = {
            (coordinator.party.name, step.purpose, step.status)
            for coordinator in runtime.desk.coordinators.values()
            for plan in coordinator.store.plans(agent=coordinator.party.name)
            for step in coordinator.store.steps(plan.plan_id)
            if step.purpose in ("approve", "revoke")
        }
        gas = {name: _evm_fees(deployment, runtime, name) for name in evm}
    assert plans == {
        ("maker", "maker", "claimed"),
        ("taker", "taker", "claimed"),
        ("payer", "plan", "claimed"),
    }
    # The two agents that lock USDC approved exactly once each; nothing was revoked.
    assert approvals == {("maker", "approve", "final"), ("payer", "approve", "final")}
    assert usdc_before["maker"] == usdc_before["payer"] == 1000 * USDC
    change = {label: usdc_after[label] - usdc_before[label] for label in owners}
    assert change == {
        "maker": -50 * USDC,
        "taker": 50 * USDC,
        "payer": -12_500_000,
        "acme": 12_500_000,
    }
    # Ether on arb pays only gas: approve, lock and claim for the lockers, a claim for
    # the taker.
    assert {name: eth_after[name] - eth_before[name] for name in evm} == {
        name: -gas[name] for name in evm
    }
    assert [allowance(evm[name]) for name in ("maker", "payer")] == [0, 0]


@pytest.mark.parametrize("deployment", ["40"], indirect=True)
async def test_a_usdc_lock_over_the_limit_is_never_approved(deployment):
    """Negative control: SpendLimit judges the approval as the lock, so the maker's
    50 USDC lock against a 40 USDC limit sends nothing: the approval is denied, there is
    no allowance and no lock, and the taker, seeing no lock, locks nothing either."""
    async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
        await runtime.run(max_ticks=1)
        assert runtime.desk is not None
        coordinators = runtime.desk.coordinators
        maker = coordinators["maker"]
        (plan,) = [p for p in maker.store.plans(agent="maker") if p.kind == "maker"]
        steps = [(s.purpose, s.status, s.reason) for s in maker.store.steps(plan.plan_id)]
        taker_steps = coordinators["taker"].store.steps(plan.plan_id)
    assert plan.state == "cancelled", plan
    assert [(purpose, status) for purpose, status, _ in steps] == [("approve", "failed")]
    assert "SpendLimit" in str(steps[0][2])
    assert taker_steps == []


def _usdc_both_chains(tmp_path: Path) -> Path:
    file = _with_usdc(tmp_path)
    data: dict[str, Any] = yaml.safe_load(file.read_text())
    data["assets"].append({"symbol": "USDC", "chain": "sol", "spl_mint": "local", "decimals": 6})
    data["chains"][1]["local"]["fund_tokens"] = "1000"
    planners = {planner["name"]: planner for planner in data["planners"]}
    planners["make"]["plans"] = [_swap(("arb", "USDC", "50"), ("sol", "USDC", "49.5"), "taker")]
    planners["take"]["plans"] = [_swap(("sol", "USDC", "49.5"), ("arb", "USDC", "50"), "maker")]
    floors = [{"give": "USDC", "take": "USDC", "at_least": "0.99"}]
    for agent in data["agents"]:
        agent["policies"][-1] = {"SwapRate": {"floors": floors}}
        if agent["name"] == "taker":
            agent["policies"][3] = {"SpendLimit": {"per_transaction": {"USDC": "60"}}}
    data["agents"] = [a for a in data["agents"] if a["name"] != "payer"]
    file.write_text(yaml.safe_dump(data))
    return file


async def test_usdc_on_arbitrum_for_usdc_on_solana_with_exact_balances(tmp_path):
    """The acceptance swap: USDC (ERC-20) on an EVM chain for USDC (SPL) on Solana
    between two agents of the daemon. Tokens move exactly; ether pays only gas; on
    Solana the taker pays only signatures (its escrow's and vault's rent come back when
    the maker claims), and the maker pays one signature for its claim."""
    if anvil_path() is None:
        pytest.skip("anvil not installed: run `npm ci` (scripts/setup.sh does)")
    deployment = load_deployment(_usdc_both_chains(tmp_path))
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    await devnet.up(deployment)
    usdc = {"arb": local_token_address("USDC"), "sol": local_mint("USDC")}
    try:
        async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
            owners = {
                (name, chain): runtime.wallets.agent(name).address(deployment, chain)
                for name in ("maker", "taker")
                for chain in ("arb", "sol")
            }

            async def balances(token: bool) -> dict[tuple[str, str], int]:
                return {
                    key: await runtime.adapters[key[1]].balance(
                        address, usdc[key[1]] if token else None
                    )
                    for key, address in owners.items()
                }

            tokens_before, native_before = await balances(True), await balances(False)
            await runtime.run(max_ticks=1)
            tokens_after, native_after = await balances(True), await balances(False)
            assert runtime.desk is not None
            plans = {
                (plan.agent, plan.state)
                for coordinator in runtime.desk.coordinators.values()
                for plan in coordinator.store.plans(agent=coordinator.party.name)
            }
            gas = {name: _evm_fees(deployment, runtime, name) for name in ("maker", "taker")}
            sol: Any = runtime.adapters["sol"]
            lock_fee, claim_fee = sol.fee(2), sol.fee(1)
    finally:
        devnet.down(deployment)
    assert plans == {("maker", "claimed"), ("taker", "claimed")}
    assert {k: tokens_after[k] - tokens_before[k] for k in owners} == {
        ("maker", "arb"): -50 * USDC,
        ("taker", "arb"): 50 * USDC,
        ("maker", "sol"): 49_500_000,
        ("taker", "sol"): -49_500_000,
    }
    assert {k: native_after[k] - native_before[k] for k in owners} == {
        ("maker", "arb"): -gas["maker"],
        ("taker", "arb"): -gas["taker"],
        ("maker", "sol"): -claim_fee,
        ("taker", "sol"): -lock_fee,
    }
