"""A hostile counterparty for the two-operator tests: the real daemon, with one cheat.

``python -m tests.a2a._hostile CHEAT run FILE`` runs ``main.py run FILE`` in this process
after breaking the swap's terms the way CHEAT names. The cheat sits below the daemon's
own policy gate and checks, which judged the terms it was told: what a party that runs a
modified Covenant, or code of its own, can do. Everything else (A2A, signing, the store,
the chains) is the real daemon's, so the honest side meets it as it would on a network.

The lock cheats change ``build`` of the escrow clients (``EvmHtlc``,
chains/families/evm/escrow.py, for north's ETH; ``SolanaHtlc``,
chains/families/solana/escrow.py, for south's SOL), the one place a lock transaction's
terms are encoded; the deadline cheats change the offer's deadlines
(``Margins.default_deadlines``, config/margins.py), which the offer signs.
The Solana cheats replace a lock or claim transaction with one of the attacker's own
programs (tests/atomic/_sbpf_attacks.py). The squat funds the escrow address the other
side will lock into before it can (``Coordinator._send``, chains/atomic/coordinator.py,
the one place a lock is sent). The flood buries a claim under later transactions
(``Coordinator._broadcast``, where a claim's bytes go out).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from solders.pubkey import Pubkey

from chains.atomic.base import Leg
from chains.atomic.coordinator import Coordinator
from chains.families.evm.escrow import EvmHtlc
from chains.families.solana.escrow import SolanaHtlc
from config.margins import Margins
from tests.atomic._sbpf_attacks import (
    FORGER,
    LOGGER,
    PROXY,
    deploy,
    flood,
    forged_lock,
    hidden_claim,
)


def _elsewhere(leg: Leg) -> Leg:
    """The leg locked to an address of nobody in the swap, on the leg's own chain."""
    nobody = "0x" + "ee" * 20 if leg.recipient.startswith("0x") else str(Pubkey.new_unique())
    return leg.model_copy(update={"recipient": nobody})


LockCheat = Callable[[Leg, bytes], tuple[Leg, bytes]]

LOCK_CHEATS: dict[str, LockCheat] = {
    # What the honest taker must see on chain and refuse before it locks anything.
    "amount": lambda leg, hashlock: (leg.model_copy(update={"amount": leg.amount - 1}), hashlock),
    "recipient": lambda leg, hashlock: (_elsewhere(leg), hashlock),
    "hashlock": lambda leg, hashlock: (leg, os.urandom(32)),
    "lock-deadline": lambda leg, hashlock: (
        leg.model_copy(update={"deadline": leg.deadline - 1}),
        hashlock,
    ),
}

OFFER_CHEATS = {
    # (taker's deadline, maker's deadline) offered, from the honest ones: the taker's
    # too soon for it to lock and be claimed, or both past the taker's max_lock.
    "short-deadline": lambda taker, maker, now: (now + 3, maker),
    "long-deadline": lambda taker, maker, now: (taker + 10 * 86_400, maker + 10 * 86_400),
}

SOLANA_CHEATS = (
    # South locks its SOL into an account of its own program, not the HTLC program's.
    "forged-escrow",
    # North claims south's SOL behind ~15 kB of logs (the Claimed event truncated away),
    # and with "-proxy" through a program of its own (the claim an inner instruction).
    "hide-claim",
    "hide-claim-proxy",
)

SQUAT = 1_000_000_000
"""Lamports the squatter sends to the other side's Solana escrow address (1 SOL)."""

FLOOD = 1000
"""Transactions the flooder sends after its claim, all naming the escrow: a full page of
``getSignaturesForAddress`` (agave's limit), so the claim is not on the first one."""

CHEATS = (
    *LOCK_CHEATS,
    *OFFER_CHEATS,
    *SOLANA_CHEATS,
    "never-lock",
    "squat-escrow",
    "flood-claim",
)


def _cheat_lock(change: LockCheat | None) -> None:
    for client in (EvmHtlc, SolanaHtlc):
        client.build = _cheating(client.build, change)  # type: ignore[method-assign]


def _cheating(honest: Any, change: LockCheat | None) -> Any:
    async def build(self: Any, purpose: Any, leg: Leg, **kwargs: Any) -> Any:
        if purpose == "lock":
            if change is None:  # never-lock: the lock is never sent; the sweep waits on
                await asyncio.Event().wait()
            else:
                leg, kwargs["hashlock"] = change(leg, kwargs.get("hashlock", b""))
        return await honest(self, purpose, leg, **kwargs)

    return build


def _cheat_solana(cheat: str) -> None:
    """Replace one kind of the daemon's Solana HTLC transactions with the attacker's
    (tests/atomic/_sbpf_attacks.py); its programs are loaded on first use."""
    honest = SolanaHtlc.build
    loaded: dict[str, Pubkey] = {}

    async def program(htlc: SolanaHtlc, source: str) -> Pubkey:
        if source not in loaded:
            loaded[source] = await deploy(htlc, source)
        return loaded[source]

    async def build(
        self: SolanaHtlc,
        purpose: Any,
        leg: Leg,
        *,
        hashlock: bytes = b"",
        preimage: bytes = b"",
        payer: str,
    ) -> Any:
        if cheat == "forged-escrow" and purpose == "lock":
            forger = await program(self, FORGER)
            return await forged_lock(self, leg, hashlock, payer, forger=forger)
        if cheat.startswith("hide-claim") and purpose == "claim":
            logger = await program(self, LOGGER)
            proxy = await program(self, PROXY) if cheat.endswith("-proxy") else None
            return await hidden_claim(self, leg, preimage, payer, logger=logger, proxy=proxy)
        return await honest(self, purpose, leg, hashlock=hashlock, preimage=preimage, payer=payer)

    SolanaHtlc.build = build  # type: ignore[method-assign]


def _cheat_squat() -> None:
    """Before it locks, send lamports to each Solana escrow address of the other side's
    legs: the address is in the signed acceptance, and on Solana anyone may fund any
    address. A system account with lamports at the address must not stop the honest
    lock (it takes the account over and tops it up). The local faucet stands in for
    the squatter's own transfer: the account it leaves is the same."""
    honest = Coordinator._send

    async def send(self: Coordinator, plan: Any, leg: Leg, purpose: Any, **kwargs: Any) -> str:
        if purpose == "lock":
            for theirs in plan.legs:
                chain = self.chain(theirs.chain)
                if not theirs.ours and isinstance(chain, SolanaHtlc):
                    await chain.adapter.read("requestAirdrop", [theirs.locator, SQUAT])
        return await honest(self, plan, leg, purpose, **kwargs)

    Coordinator._send = send  # type: ignore[method-assign]


def _cheat_flood() -> None:
    """Claim the other side's SOL, then bury the claim under FLOOD later transactions
    that name the escrow. The server holds every transaction from the claim's broadcast
    until the flood is sent, then lands them all at once (``covenant_setHold``,
    ``covenant_releaseHeld``), so no reader can look between the claim and the flood."""
    honest_send, honest_broadcast = Coordinator._send, Coordinator._broadcast
    burying: dict[int, Pubkey] = {}  # id(coordinator): the escrow its claim empties

    async def send(self: Coordinator, plan: Any, leg: Leg, purpose: Any, **kwargs: Any) -> str:
        if purpose == "claim" and isinstance(self.chain(leg.chain), SolanaHtlc):
            burying[id(self)] = Pubkey.from_string(leg.locator)
        try:
            return await honest_send(self, plan, leg, purpose, **kwargs)
        finally:
            burying.pop(id(self), None)

    async def broadcast(self: Coordinator, step: int, chain: Any, tx_id: Any, raw: bytes) -> bool:
        escrow = burying.pop(id(self), None)
        if escrow is None:
            return await honest_broadcast(self, step, chain, tx_id, raw)
        logger = await deploy(chain, LOGGER)
        await chain.adapter.read("covenant_setHold", [True])
        try:
            sent = await honest_broadcast(self, step, chain, tx_id, raw)
            await flood(chain, escrow, logger, FLOOD)
        finally:
            await chain.adapter.read("covenant_setHold", [False])
            await chain.adapter.read("covenant_releaseHeld", [])
        return sent

    Coordinator._send = send  # type: ignore[method-assign]
    Coordinator._broadcast = broadcast  # type: ignore[method-assign]


def _cheat_offer(change: Callable[[int, int, int], tuple[int, int]]) -> None:
    honest = Margins.default_deadlines

    def deadlines(self: Margins, now: int, reveal_order: Any) -> list[int]:
        taker, maker = honest(self, now, reveal_order)
        return list(change(taker, maker, now))

    Margins.default_deadlines = deadlines  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    cheat, *command = argv
    if cheat in LOCK_CHEATS:
        _cheat_lock(LOCK_CHEATS[cheat])
    elif cheat in OFFER_CHEATS:
        _cheat_offer(OFFER_CHEATS[cheat])
    elif cheat == "never-lock":
        _cheat_lock(None)
    elif cheat in SOLANA_CHEATS:
        _cheat_solana(cheat)
    elif cheat == "squat-escrow":
        _cheat_squat()
    elif cheat == "flood-claim":
        _cheat_flood()
    else:
        raise SystemExit(f"unknown cheat {cheat!r}; one of {', '.join(CHEATS)}")
    import main as daemon

    return daemon.main(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
