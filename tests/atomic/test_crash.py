"""Crash test: a daemon process SIGKILLed at every journal boundary, five times each.

Each boundary gets its own agent, store and plans on the shared chains (two anvils and
the LiteSVM JSON-RPC server) and runs as a sequence of daemon processes: each one is
killed (``COVENANT_CRASH_AT``) the first or second time it reaches the boundary, so every
restart makes progress and dies somewhere new; after five kills one more run finishes
the job. Then every plan must be fully claimed or fully refunded, no escrow locked twice,
and every balance must reconcile exactly with the fees of the transactions that landed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from base64 import b64decode
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from eth_account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.instructions import get_associated_token_address
from web3 import Web3
from web3.exceptions import TransactionNotFound

from chains._store import journal
from chains.atomic._crash import BOUNDARIES
from chains.atomic.base import Leg
from chains.atomic.store import PlanRecord, PlanStore
from chains.families.evm.devnet import install_local_token, top_up_local_token
from chains.families.solana.local_token import install_local_mint, local_mint, top_up_local_mint
from config.store import open_store
from tests.atomic._env import EvmNode, SolanaNode, make_wallet
from wallets.hd import generate_mnemonic

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
ZYGOTE = Path(__file__).resolve().parent / "_zygote.py"
ETH = 10**18
SOL = 10**9
KILLS = 5
PLANS = 6
SWAPS = 2
USDC = 10**6
REFUND_BOUNDARIES = ("refund_intent", "refund_signed", "refund_final")
REVOKE_BOUNDARIES = ("revoke_intent", "revoke_signed", "revoke_final")
TOKEN_BOUNDARIES = ("approve_intent", "approve_signed", "approve_final", *REVOKE_BOUNDARIES)
"""Boundaries whose plans pay the local USDC on arb: approved, locked, claimed; or, for
the revoke boundaries, approved for more than the agent holds, so the lock fails and the
plan winds down by revoking the approval."""
TOKEN = "0x" + "c5" * 20
SOL_MINT = local_mint("CRASHUSDC")
"""The local USDC on the LiteSVM server: the token boundaries' swaps are USDC on Solana
for USDC on arb."""
TOKEN_FUND = 1_000 * USDC


@dataclass
class Outcome:
    boundary: str
    kills: int
    final_code: int
    store: str
    plans: list[dict[str, Any]]
    agent: Any
    taker: Any
    log: str


def _funds(boundary: str) -> dict[str, int]:
    """What the agent starts with on each chain; refund plans cannot pay their base leg."""
    base = ETH // 1000 if boundary in REFUND_BOUNDARIES else 10 * ETH
    return {"arb": 10 * ETH, "base": base, "sol": 10 * SOL}


def _plans(boundary: str) -> tuple[list[dict[str, Any]], int]:
    """Plans for `boundary` and the watcher interval (long: nothing expires by accident)."""
    plans: list[dict[str, Any]] = []
    for number in range(PLANS):
        arb = {"chain": "arb", "recipient": Account.create().address, "amount": ETH // 100}
        sol = {"chain": "sol", "recipient": str(Keypair().pubkey()), "amount": SOL // 10}
        base = {"chain": "base", "recipient": Account.create().address, "amount": ETH // 50}
        payments = [arb, sol, base]
        if boundary in TOKEN_BOUNDARIES:
            arb["asset"], arb["amount"] = TOKEN, 10 * USDC
        if boundary in REVOKE_BOUNDARIES:  # approved, then the lock cannot take it
            # A deadline far out, so restarts never make it "too late to lock" first.
            arb["amount"], arb["deadline_in"] = 2 * TOKEN_FUND, 600
            payments = [arb]
        if boundary in REFUND_BOUNDARIES:  # the base lock fails, so the first leg refunds
            first = sol if number % 2 else arb
            first["deadline_in"], base["amount"] = 10, ETH
            payments = [first, base]
        plans.append({"id": f"crash-{boundary.replace('_', '-')}-{number}", "payments": payments})
    return plans, (1 if boundary in REFUND_BOUNDARIES else 25)


def _swaps(boundary: str) -> list[dict[str, Any]]:
    """Swaps between the daemon's two agents (none where the test wants refunds)."""
    if boundary in REFUND_BOUNDARIES + REVOKE_BOUNDARIES:
        return []
    give: dict[str, Any] = {"chain": "sol", "amount": SOL // 20}
    take: dict[str, Any] = {"chain": "arb", "amount": ETH // 200}
    if boundary in TOKEN_BOUNDARIES:  # USDC both ways: the taker approves and locks on arb
        give = {"chain": "sol", "amount": 5 * USDC, "asset": SOL_MINT}
        take = {"chain": "arb", "amount": 5 * USDC, "asset": TOKEN}
    return [
        {"id": f"swap-{boundary.replace('_', '-')}-{number}", "give": give, "take": take}
        for number in range(SWAPS)
    ]


def _run_boundary(boundary: str, nodes: dict[str, EvmNode], sol: SolanaNode, tmp: Path) -> Outcome:
    plans, watcher = _plans(boundary)
    mnemonic, taker_mnemonic = generate_mnemonic(12), generate_mnemonic(12)
    agent, taker = make_wallet("crash", mnemonic), make_wallet("taker", taker_mnemonic)
    funds = _funds(boundary)
    for wallet in (agent, taker):
        for name, node in nodes.items():
            node.fund(wallet.evm_address, funds[name])
        sol.fund(wallet.solana_address, funds["sol"])
        asyncio.run(top_up_local_token(nodes["arb"].url, TOKEN, wallet.evm_address, TOKEN_FUND))
        asyncio.run(top_up_local_mint(sol.url, SOL_MINT, wallet.solana_address, TOKEN_FUND))
    config: dict[str, Any] = {
        "store": f"sqlite:///{tmp / f'{boundary}.db'}",
        "agent": "crash",
        "mnemonic": mnemonic,
        "taker_mnemonic": taker_mnemonic,
        "swaps": _swaps(boundary),
        "watcher": watcher,
        "plans": plans,
        "solana": sol.url,
        "evm": {
            name: {"chain_id": node.chain_id, "url": node.url, "contract": node.contract}
            for name, node in nodes.items()
        },
    }
    config_file = tmp / f"{boundary}.json"
    config_file.write_text(json.dumps(config))
    log_path = tmp / f"{boundary}.log"
    # A restart re-enters an *_intent step (abandoned, sent anew) and `locked_all`, so
    # those kill on the second pass to make progress; the others on the first.
    nth = 2 if boundary.endswith("_intent") or boundary == "locked_all" else 1
    kills, code = 0, None
    zygote = subprocess.Popen(
        [sys.executable, str(ZYGOTE), str(log_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        while kills < KILLS:
            code = _daemon(zygote, config_file, f"{boundary}:{nth}")
            if code != -9:
                break
            kills += 1
        code = _daemon(zygote, config_file, None)
    finally:
        zygote.kill()
        zygote.wait()
    return Outcome(boundary, kills, code, config["store"], plans, agent, taker, str(log_path))


def _daemon(zygote: subprocess.Popen[str], config: Path, crash: str | None) -> int:
    """Run one daemon process (forked by the zygote) to its exit or its SIGKILL."""
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    zygote.stdin.write(json.dumps({"config": str(config), "crash": crash}) + "\n")
    zygote.stdin.flush()
    return int(json.loads(zygote.stdout.readline())["code"])


def test_daemon_killed_at_every_journal_boundary(evm_nodes, solana_node, tmp_path):
    assert len(BOUNDARIES) >= 8
    asyncio.run(install_local_token(evm_nodes["arb"].url, TOKEN))
    asyncio.run(install_local_mint(solana_node.url, SOL_MINT))
    # COVENANT_CRASH_ONLY=a,b runs only those boundaries (while debugging one of them).
    only = [b for b in os.environ.get("COVENANT_CRASH_ONLY", "").split(",") if b]
    boundaries = [b for b in BOUNDARIES if b in only] if only else list(BOUNDARIES)
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(
            pool.map(lambda b: _run_boundary(b, evm_nodes, solana_node, tmp_path), boundaries)
        )
    chains = Chains(evm_nodes, solana_node)
    for outcome in outcomes:
        tail = Path(outcome.log).read_text()[-3000:]
        assert outcome.kills == KILLS, (outcome.boundary, tail)
        assert outcome.final_code == 0, (outcome.boundary, tail)
        _check_outcome(outcome, chains)


@dataclass
class Chains:
    """Read-only views of the shared chains, by chain name."""

    evm: dict[str, EvmNode]
    sol: SolanaNode

    def balance(self, chain: str, address: str) -> int:
        node = self.evm.get(chain)
        return node.balance(address) if node else self.sol.balance(address)

    def token(self, signature: str, *addresses: str) -> int:
        """A uint256 view of the local USDC on arb (balanceOf, allowance)."""
        data = Web3.keccak(text=signature)[:4] + b"".join(
            bytes(12) + bytes.fromhex(address[2:]) for address in addresses
        )
        call: Any = {"to": Web3.to_checksum_address(TOKEN), "data": data}
        return int.from_bytes(self.evm["arb"].w3.eth.call(call), "big")

    def usdc(self, chain: str, address: str) -> int:
        """The local USDC `address` holds on `chain` (arb's ERC-20, or the Solana mint in
        the owner's associated token account)."""
        if chain == "arb":
            return self.token("balanceOf(address)", address)
        ata = get_associated_token_address(
            Pubkey.from_string(address), Pubkey.from_string(SOL_MINT)
        )
        account = self.sol.account(str(ata))
        return (
            0 if account is None else int.from_bytes(b64decode(account["data"][0])[64:72], "little")
        )

    def fee(self, chain: str, tx_id: str, raw: bytes) -> int:
        """What the transaction cost its payer; 0 if it never landed."""
        node = self.evm.get(chain)
        if node is not None:
            try:
                return node.fee(tx_id)
            except TransactionNotFound:
                return 0
        if not self.landed(tx_id, ok_only=False):
            return 0
        return 5_000 * len(VersionedTransaction.from_bytes(raw).signatures)

    def landed(self, tx_id: str, *, ok_only: bool = True) -> bool:
        status = self.sol.rpc("getSignatureStatuses", [[tx_id]])["value"][0]
        return status is not None and (status["err"] is None or not ok_only)

    def locks(self, chain: str, locator: str, lock_txs: list[str]) -> int:
        """How many times the escrow was locked on chain."""
        node = self.evm.get(chain)
        if node is not None:
            return node.locked_events(locator)
        return sum(self.landed(tx_id) for tx_id in lock_txs)


def _check_outcome(outcome: Outcome, chains: Chains) -> None:
    engine = open_store(outcome.store)
    try:
        store = PlanStore(engine)
        plans = store.plans()
        steps = [step for plan in plans for step in store.scoped(plan.agent).steps(plan.plan_id)]
        with engine.connect() as connection:
            sent = connection.execute(
                sa.select(journal.c.tx_id, journal.c.chain, journal.c.sender, journal.c.raw)
            ).all()
    finally:
        engine.dispose()
    assert len(plans) == PLANS + 2 * len(_swaps(outcome.boundary))
    rent = int(chains.sol.rpc("getMinimumBalanceForRentExemption", [128]))
    expected: dict[tuple[str, str], int] = {}  # (chain, address) -> balance
    for wallet in (outcome.agent, outcome.taker):
        for name, funded in _funds(outcome.boundary).items():
            address = wallet.solana_address if name == "sol" else wallet.evm_address
            expected[(name, address)] = funded
    for tx_id, chain, sender, raw in sent:
        expected[(chain, sender)] -= chains.fee(chain, tx_id, raw)
    tokens = {("arb", w.evm_address): TOKEN_FUND for w in (outcome.agent, outcome.taker)}
    tokens |= {("sol", w.solana_address): TOKEN_FUND for w in (outcome.agent, outcome.taker)}
    for leg, (settled, plan_id) in _escrows(outcome, plans).items():
        lock_txs = [
            step.tx_id
            for step in steps
            if step.purpose == "lock"
            and step.tx_id
            and (step.plan_id, step.idx) == (plan_id, leg.index)
        ]
        # USDC moves; the native coin pays only the fees counted above (a Solana token
        # escrow's and vault's rent go back to the locker whether claimed or refunded).
        if leg.asset:
            _check_escrow(leg, settled, lock_txs, chains, 0, tokens, outcome, chains.usdc)
        else:
            _check_escrow(leg, settled, lock_txs, chains, rent, expected, outcome, chains.balance)
    for (chain, address), balance in expected.items():
        assert chains.balance(chain, address) == balance, (outcome.boundary, chain, address)
    contract = chains.evm["arb"].contract
    for (chain, owner), held in tokens.items():
        assert chains.usdc(chain, owner) == held, (outcome.boundary, chain, owner)
        if chain == "arb":  # an SPL token lock moves tokens the sender signs for
            allowed = chains.token("allowance(address,address)", owner, contract)
            assert allowed == 0, (outcome.boundary, owner, "an approval outlived its plan")


def _escrows(outcome: Outcome, plans: list[PlanRecord]) -> dict[Leg, tuple[str, str]]:
    """Every escrow once, with how it ended (claimed, refunded or never locked) and the
    plan id it was journaled under."""
    escrows: dict[Leg, tuple[str, str]] = {}
    for plan in plans:
        where = (outcome.boundary, plan.plan_id, plan.agent, plan.state, plan.reason)
        if outcome.boundary in REFUND_BOUNDARIES:
            assert plan.state == "refunded", where
        elif outcome.boundary in REVOKE_BOUNDARIES:
            assert plan.state == "cancelled", where
        else:
            assert plan.state == "claimed", where  # a swap side: it claimed its take
        for leg in plan.legs:
            if plan.kind == "plan":
                state = plan.leg_states[leg.index]
                assert state == ("claimed" if plan.state == "claimed" else state), where
                assert state in ("claimed", "refunded", "never"), where
                escrows[leg.model_copy(update={"ours": True})] = (state, plan.plan_id)
            elif not leg.ours:  # the leg this side claimed
                escrows[leg.model_copy(update={"ours": True})] = ("claimed", plan.plan_id)
    return escrows


def _check_escrow(
    leg: Leg,
    settled: str,
    lock_txs: list[str],
    chains: Chains,
    rent: int,
    expected: dict[tuple[str, str], int],
    outcome: Outcome,
    balance: Callable[[str, str], int],
) -> None:
    locks = chains.locks(leg.chain, leg.locator, lock_txs)
    assert locks == (0 if settled == "never" else 1), (outcome.boundary, leg)  # never twice
    moved = leg.amount + (rent if leg.chain == "sol" else 0)  # a claim empties the escrow
    if settled != "claimed":  # only single-agent plans refund here: fresh recipients
        assert balance(leg.chain, leg.recipient) == 0, (outcome.boundary, leg)
        return
    expected[(leg.chain, leg.sender)] -= moved
    if (leg.chain, leg.recipient) in expected:  # the other agent of this daemon
        expected[(leg.chain, leg.recipient)] += moved
    else:  # a fresh recipient address
        assert balance(leg.chain, leg.recipient) == moved, (outcome.boundary, leg)
