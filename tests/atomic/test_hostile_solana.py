"""A dishonest counterparty on the Solana side of a swap (issue #13, item 5).

Everything runs on the LiteSVM JSON-RPC server with the real HTLC program. The hostile
side uses programs of its own (tests/atomic/_sbpf_attacks.py): a *forger*, a *logger*
and a *proxy*. tests/a2a/test_two_operators_hostile.py runs the same attacks between two
daemon processes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from typing import Any

import pytest
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import VersionedTransaction

from chains.atomic.base import Leg, LockState
from chains.atomic.swap import SwapSide
from chains.base import UnsignedTx
from chains.families.solana import htlc_client as program
from chains.families.solana.escrow import SolanaHtlc
from tests.atomic._env import SolanaNode, solana_htlc, unique
from tests.atomic._sbpf_attacks import (
    FORGER,
    LOGGER,
    PROXY,
    elf,
    escrow_bytes,
    flood,
    hidden_claim,
)
from tests.atomic._swap import ETH, SOL, Side, close, make_side, open_swap, run_both, trusting

pytestmark = pytest.mark.anvil


class Attacker:
    """The attacker's direct line to the RPC server: its own keypairs, its own programs."""

    def __init__(self, node: SolanaNode) -> None:
        self.node = node
        self.payer = Keypair()
        node.fund(str(self.payer.pubkey()), 100 * SOL)
        self.forger, self.logger, self.proxy = (
            self.deploy(elf(s)) for s in (FORGER, LOGGER, PROXY)
        )

    def deploy(self, elf: bytes) -> Pubkey:
        program_id = Keypair().pubkey()
        self.node.rpc("covenant_addProgram", [str(program_id), base64.b64encode(elf).decode()])
        return program_id

    def forger_account(self, account: Keypair, lamports: int) -> Instruction:
        """Create `account` (escrow-sized) owned by the attacker's forger program."""
        params = CreateAccountParams(
            from_pubkey=self.payer.pubkey(),
            to_pubkey=account.pubkey(),
            lamports=lamports,
            space=program.ESCROW_LEN,
            owner=self.forger,
        )
        return create_account(params)

    def blockhash(self) -> Hash:
        return Hash.from_string(self.node.rpc("getLatestBlockhash", [])["value"]["blockhash"])

    def signed(self, instructions: list[Instruction], *signers: Keypair) -> str:
        """One transaction paid by the attacker, base64."""
        message = MessageV0.try_compile(self.payer.pubkey(), instructions, [], self.blockhash())
        tx = VersionedTransaction(message, [self.payer, *signers])
        return base64.b64encode(bytes(tx)).decode()

    def send(self, instructions: list[Instruction], *signers: Keypair) -> str:
        raw = self.signed(instructions, *signers)
        return str(self.node.rpc("sendTransaction", [raw, {"encoding": "base64"}]))

    def transaction(self, signature: str) -> dict[str, Any]:
        return dict(self.node.rpc("getTransaction", [signature, {"encoding": "base64"}]))


@pytest.fixture(scope="module")
def attacker(solana_node: SolanaNode) -> Attacker:
    return Attacker(solana_node)


@pytest.fixture
async def swap_sides(tmp_path, evm_nodes, solana_node):
    arb = evm_nodes["arb"]
    maker = await make_side("maker", tmp_path, [arb], solana_node)
    taker = await make_side("taker", tmp_path, [arb], solana_node, verify=trusting)
    for side in (maker, taker):
        arb.fund(side.wallet.evm_address, 10 * ETH)
        solana_node.fund(side.wallet.solana_address, 10 * SOL)
    yield maker, taker
    await close(maker, taker)


def _sol(side: Side) -> SolanaHtlc:
    chain = side.coordinator.chain("sol")
    assert isinstance(chain, SolanaHtlc)
    return chain


# -- finding 1: an escrow is what the HTLC program vouches for, not what its bytes say --


async def test_forged_escrow_of_the_makers_own_program_is_not_a_lock(
    swap_sides, attacker, evm_nodes, solana_node, monkeypatch
):
    maker, taker = swap_sides
    fake = Keypair()  # the "escrow" the maker names in its offer: an account of its program
    monkeypatch.setattr(_sol(maker), "locator", lambda plan_id, index, party: str(fake.pubkey()))
    plan_id = unique("forged")
    await open_swap(
        maker,
        taker,
        plan_id,
        give=SwapSide(chain="sol", amount=5 * SOL),
        take=SwapSide(chain="arb", amount=ETH // 2),
    )
    plan = maker.coordinator.store.get(plan_id)
    rent = solana_node.rpc("getMinimumBalanceForRentExemption", [program.ESCROW_LEN])
    forged = escrow_bytes(plan.leg(0), plan.hashlock, 5 * SOL)
    write = Instruction(attacker.forger, forged, [AccountMeta(fake.pubkey(), False, True)])
    attacker.send([attacker.forger_account(fake, rent), write], fake)
    info = solana_node.account(str(fake.pubkey()))
    assert info is not None
    assert base64.b64decode(info["data"][0]) == forged  # byte for byte a lock
    assert info["lamports"] == rent  # of 5 SOL, holding 0.0018

    taken = await taker.coordinator.drive(plan_id)

    assert taker.purposes == []  # the taker locked no ether against it
    # A hostile maker: the taker walks away at once, with nothing locked, and says why.
    assert taken.state == "cancelled"
    assert f"owned by {attacker.forger}, not the HTLC program" in (taken.reason or "")
    assert evm_nodes["arb"].balance(taker.wallet.evm_address) == 10 * ETH
    reason = _sol(taker).why_not_locked(plan.leg(0)) or ""
    assert f"owned by {attacker.forger}, not the HTLC program" in reason


async def test_escrow_holding_less_than_it_records_is_not_a_lock(attacker, solana_node):
    """A state the program never leaves (its lock checks lamports >= amount), written
    with covenant_setAccount: the client's own check must not depend on the program's."""
    chain = await solana_htlc(solana_node)
    assert isinstance(chain, SolanaHtlc)
    escrow, recipient = Keypair(), Keypair().pubkey()
    hashlock = hashlib.sha256(os.urandom(32)).digest()
    leg = Leg(
        index=0,
        chain="sol",
        sender=str(attacker.payer.pubkey()),
        recipient=str(recipient),
        amount=SOL,
        deadline=int(time.time()) + 3600,
        locator=str(escrow.pubkey()),
    )
    rent = solana_node.rpc("getMinimumBalanceForRentExemption", [program.ESCROW_LEN])
    lock = program.lock_instructions(
        program.LOCAL_PROGRAM_ID,
        sender=attacker.payer.pubkey(),
        escrow=escrow.pubkey(),
        recipient=recipient,
        hashlock=hashlock,
        deadline=leg.deadline,
        amount=SOL,
        rent_exempt_lamports=rent,
    )
    attacker.send(lock, escrow)
    try:
        honest = await chain.read(leg)  # negative control: the real lock passes
        assert honest.state == LockState.LOCKED
        assert honest.mismatch(leg, hashlock) is None
        solana_node.rpc("covenant_setAccount", [leg.locator, {"lamports": SOL - 1}])
        short = await chain.read(leg)
        assert short.state == LockState.EMPTY
        reason = chain.why_not_locked(leg) or ""
        assert f"holds {SOL - 1} lamports, less than the {SOL} it records" in reason
        data = solana_node.account(leg.locator)
        assert data is not None
        grown = base64.b64decode(data["data"][0]) + b"\0"
        solana_node.rpc(
            "covenant_setAccount",
            [leg.locator, {"lamports": SOL + rent, "data": base64.b64encode(grown).decode()}],
        )
        assert (await chain.read(leg)).state == LockState.EMPTY
        assert "data is 129 bytes, not 128" in (chain.why_not_locked(leg) or "")
        solana_node.rpc(
            "covenant_setAccount",
            [leg.locator, {"data": base64.b64encode(grown[:-1]).decode()}],
        )
        assert (await chain.read(leg)).state == LockState.LOCKED  # and back: the check passes
        assert chain.why_not_locked(leg) is None
    finally:
        await chain.close()
        await chain.adapter.close()


# -- finding 2: the preimage comes from the claim instruction, whatever hides the logs --


class HidingMaker(SolanaHtlc):
    """A maker's HTLC client that claims behind ~15 kB of logs and, with `proxy`, through
    its own program (tests/atomic/_sbpf_attacks.py: hidden_claim)."""

    logger: Pubkey
    proxy: Pubkey | None = None

    async def build(
        self,
        purpose: Any,
        leg: Leg,
        *,
        hashlock: bytes = b"",
        preimage: bytes = b"",
        payer: str,
    ) -> UnsignedTx:
        if purpose != "claim":
            return await super().build(
                purpose, leg, hashlock=hashlock, preimage=preimage, payer=payer
            )
        return await hidden_claim(self, leg, preimage, payer, logger=self.logger, proxy=self.proxy)


async def _hide_claims(maker: Side, attacker: Attacker, *, proxy: bool) -> None:
    honest = _sol(maker)
    hiding = HidingMaker(honest.adapter, str(honest.program_id), margin=honest.margin)
    hiding.logger = attacker.logger
    hiding.proxy = attacker.proxy if proxy else None
    await honest.close()
    maker.coordinator.chains["sol"] = hiding


@pytest.mark.parametrize("route", ["padded", "padded-through-proxy"])
async def test_claim_behind_truncated_logs_still_reveals_the_preimage(
    swap_sides, attacker, evm_nodes, solana_node, route
):
    maker, taker = swap_sides
    await _hide_claims(maker, attacker, proxy=route == "padded-through-proxy")
    plan_id = unique("hidden")
    await open_swap(
        maker,
        taker,
        plan_id,
        give=SwapSide(chain="arb", amount=ETH // 4),
        take=SwapSide(chain="sol", amount=3 * SOL),
    )
    made, taken = await run_both(maker, taker, plan_id, timeout=30)
    claim = next(s for s in maker.coordinator.store.steps(plan_id) if s.purpose == "claim")
    logs = attacker.transaction(str(claim.tx_id))["meta"]["logMessages"]
    # The attack is real: the Claimed event never made it into the logs.
    assert logs[-1] == "Log truncated"
    assert not [line for line in logs if line.startswith("Program data: ")]
    assert (made.state, taken.state) == ("claimed", "claimed"), (made.reason, taken.reason)
    steps = taker.coordinator.store.steps(plan_id)
    assert [(s.purpose, s.status) for s in steps] == [("lock", "final"), ("claim", "final")]
    claim_fee = evm_nodes["arb"].fee(steps[1].tx_id)
    assert evm_nodes["arb"].balance(taker.wallet.evm_address) == 10 * ETH + ETH // 4 - claim_fee


async def test_a_thousand_later_transactions_do_not_hide_the_claim(swap_sides, attacker, evm_nodes):
    maker, taker = swap_sides
    plan_id = unique("buried")
    await open_swap(
        maker,
        taker,
        plan_id,
        give=SwapSide(chain="arb", amount=ETH // 4),
        take=SwapSide(chain="sol", amount=3 * SOL),
    )
    escrow = Pubkey.from_string(taker.coordinator.store.get(plan_id).leg(1).locator)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    made = await maker.coordinator.drive(plan_id)
    while not made.terminal and loop.time() < deadline:  # the taker locks, the maker claims
        await taker.coordinator.drive(plan_id)
        made = await maker.coordinator.drive(plan_id)
    assert made.state == "claimed", made.reason
    # Before the taker looks: 1,000 cheap transactions naming the (closed) escrow, a full
    # page of getSignaturesForAddress newer than the claim.
    await flood(_sol(taker), escrow, attacker.logger, 1000)
    newest = attacker.node.rpc("getSignaturesForAddress", [str(escrow), {"limit": 1000}])
    assert all(item["signature"] != str(made_claim(maker, plan_id)) for item in newest)
    taken = await taker.coordinator.drive(plan_id)
    while not taken.terminal and loop.time() < deadline:
        taken = await taker.coordinator.drive(plan_id)
    assert taken.state == "claimed", taken.reason


def made_claim(maker: Side, plan_id: str) -> str:
    return str(
        next(s.tx_id for s in maker.coordinator.store.steps(plan_id) if s.purpose == "claim")
    )


async def test_only_a_claim_by_the_htlc_program_on_this_escrow_counts(attacker, solana_node):
    """claimed_preimages reads claim data only where the HTLC program runs it on the
    escrow asked about; the caller then checks the hashlock (negative controls)."""
    escrow, other, recipient = Keypair(), Keypair(), Keypair().pubkey()
    preimage = os.urandom(32)
    rent = solana_node.rpc("getMinimumBalanceForRentExemption", [program.ESCROW_LEN])
    for account in (escrow, other):
        attacker.send(
            program.lock_instructions(
                program.LOCAL_PROGRAM_ID,
                sender=attacker.payer.pubkey(),
                escrow=account.pubkey(),
                recipient=recipient,
                hashlock=hashlib.sha256(preimage).digest(),
                deadline=int(time.time()) + 3600,
                amount=SOL,
                rent_exempt_lamports=rent,
            ),
            account,
        )
    data = program.encode_claim_data(preimage)
    decoy = Instruction(attacker.logger, data, [AccountMeta(escrow.pubkey(), False, True)])
    claim_other = program.claim_instruction(
        program.LOCAL_PROGRAM_ID, escrow=other.pubkey(), recipient=recipient, preimage=preimage
    )
    claim = program.claim_instruction(
        program.LOCAL_PROGRAM_ID, escrow=escrow.pubkey(), recipient=recipient, preimage=preimage
    )
    found = {}
    for name, instruction in (("decoy", decoy), ("other", claim_other), ("claim", claim)):
        signature = attacker.send([instruction])
        fetched = await _fetched(solana_node, signature)
        found[name] = program.claimed_preimages(
            fetched, program_id=program.LOCAL_PROGRAM_ID, escrow=escrow.pubkey()
        )
    assert found["decoy"] == []  # another program's instruction, in the claim's format
    assert found["other"] == []  # a real claim, of another escrow
    assert found["claim"] == [preimage, preimage]  # the instruction, then the Claimed event


async def _fetched(node: SolanaNode, signature: str) -> Any:
    from solana.rpc.async_api import AsyncClient
    from solders.signature import Signature

    async with AsyncClient(node.url) as client:
        response = await client.get_transaction(
            Signature.from_string(signature), encoding="base64", max_supported_transaction_version=0
        )
    assert response.value is not None
    return response.value.transaction


# -- finding 3: lamports sent to the published escrow address do not block the lock ---


@pytest.mark.parametrize("prefund", [1_000_000, 3 * SOL])
async def test_prefunded_escrow_address_still_locks_and_the_swap_completes(
    swap_sides, attacker, solana_node, prefund
):
    maker, taker = swap_sides
    plan_id = unique("squat")
    await open_swap(
        maker,
        taker,
        plan_id,
        give=SwapSide(chain="sol", amount=2 * SOL),
        take=SwapSide(chain="arb", amount=ETH // 2),
    )
    escrow = maker.coordinator.store.get(plan_id).leg(0).locator
    solana_node.fund(escrow, prefund)  # anyone can: the address is in the offer
    rent = solana_node.rpc("getMinimumBalanceForRentExemption", [program.ESCROW_LEN])
    made, taken = await run_both(maker, taker, plan_id, timeout=30)
    assert (made.state, taken.state) == ("claimed", "claimed"), (made.reason, taken.reason)
    lock = next(s for s in maker.coordinator.store.steps(plan_id) if s.purpose == "lock")
    raw = base64.b64decode(attacker.transaction(str(lock.tx_id))["transaction"][0])
    kinds = len(VersionedTransaction.from_bytes(raw).message.instructions)
    top_up = max(2 * SOL + rent - prefund, 0)
    # budget, [transfer,] allocate, assign, lock: the address taken over, not created
    assert kinds == (5 if top_up else 4)
    fee = _sol(maker).adapter.fee
    held = prefund + top_up  # what the escrow held, all of it paid out by the claim
    assert solana_node.balance(maker.wallet.solana_address) == 10 * SOL - top_up - fee(2)
    assert solana_node.balance(taker.wallet.solana_address) == 10 * SOL + held - fee(1)


async def test_lamports_sent_to_an_escrow_address_are_no_lock_yet_not_a_wrong_one(
    attacker, solana_node
):
    """Anyone may send lamports to a published escrow address before its lock. That is
    no lock yet (the lock still goes there, topped up), so neither side may take it
    for a wrong lock and give the swap up; an account another program owns is one
    (the negative control)."""
    chain = await solana_htlc(solana_node)
    assert isinstance(chain, SolanaHtlc)
    escrow = Keypair()
    leg = Leg(
        index=0,
        chain="sol",
        sender=str(attacker.payer.pubkey()),
        recipient=str(Keypair().pubkey()),
        amount=SOL,
        deadline=int(time.time()) + 3600,
        locator=str(escrow.pubkey()),
    )
    try:
        solana_node.fund(leg.locator, 5_000_000)  # squatted
        assert (await chain.read(leg)).state == LockState.EMPTY
        assert chain.why_not_locked(leg) is None
        rent = solana_node.rpc("getMinimumBalanceForRentExemption", [program.ESCROW_LEN])
        forged = Keypair()
        attacker.send([attacker.forger_account(forged, rent)], forged)
        owned = leg.model_copy(update={"locator": str(forged.pubkey())})
        assert (await chain.read(owned)).state == LockState.EMPTY
        assert "not the HTLC program" in (chain.why_not_locked(owned) or "")
    finally:
        await chain.close()
        await chain.adapter.close()
