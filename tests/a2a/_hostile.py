"""A hostile counterparty for the two-operator tests: the real daemon, with one cheat.

``python -m tests.a2a._hostile CHEAT run FILE`` runs ``main.py run FILE`` in this process
after breaking the swap's terms the way CHEAT names. The cheat sits below the daemon's
own policy gate and checks, which judged the terms it was told: what a party that runs a
modified Covenant, or code of its own, can do. Everything else (A2A, signing, the store,
the chains) is the real daemon's, so the honest side meets it as it would on a network.

The hostile side in the tests is north, the maker: it gives ETH on an anvil chain, so the
lock cheats change ``EvmHtlc.build`` (chains/families/evm/escrow.py), the one place its
lock transaction's terms are encoded; the deadline cheats change the offer's deadlines
(``Margins.default_deadlines``, config/margins.py), which the offer signs.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from chains.atomic.base import Leg
from chains.families.evm.escrow import EvmHtlc
from config.margins import Margins

ELSEWHERE = "0x" + "ee" * 20
"""Where the wrong-recipient cheat locks to: an address of nobody in the swap."""

LockCheat = Callable[[Leg, bytes], tuple[Leg, bytes]]

LOCK_CHEATS: dict[str, LockCheat] = {
    # What the honest taker must see on chain and refuse before it locks anything.
    "amount": lambda leg, hashlock: (leg.model_copy(update={"amount": leg.amount - 1}), hashlock),
    "recipient": lambda leg, hashlock: (leg.model_copy(update={"recipient": ELSEWHERE}), hashlock),
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
    honest = EvmHtlc.build

    async def build(self: EvmHtlc, purpose: Any, leg: Leg, **kwargs: Any) -> Any:
        if purpose == "lock":
            if change is None:  # never-lock: the lock is never sent; the sweep waits on
                await asyncio.Event().wait()
            else:
                leg, kwargs["hashlock"] = change(leg, kwargs.get("hashlock", b""))
        return await honest(self, purpose, leg, **kwargs)

    EvmHtlc.build = build  # type: ignore[method-assign]


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
