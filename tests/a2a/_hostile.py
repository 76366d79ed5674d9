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
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from solders.pubkey import Pubkey

from chains.atomic.base import Leg
from chains.families.evm.escrow import EvmHtlc
from chains.families.solana.escrow import SolanaHtlc
from config.margins import Margins


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

CHEATS = (*LOCK_CHEATS, *OFFER_CHEATS, "never-lock")


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
    else:
        raise SystemExit(f"unknown cheat {cheat!r}; one of {', '.join(CHEATS)}")
    import main as daemon

    return daemon.main(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
