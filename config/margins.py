"""Timelock margins: how far apart deadlines must be, per chain.

A hash-time-locked swap is safe only if every party can act in time: the party that
reveals the preimage must get its claim included before its deadline, and everyone
else must see the revealed preimage and get their own claims included before theirs.
Each chain contributes its inclusion time, its finality time and, for Solana, an
allowance for a cluster halt (the chain clock stops while our deadline on another
chain keeps running). The watcher interval is how long our watchtower may take to
notice anything.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field


class ChainMargin(BaseModel):
    """Seconds one chain needs: to include a transaction, to make it final, and a halt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inclusion: int = Field(ge=1, description="Worst-case time to get a transaction included.")
    finality: int = Field(ge=0, description="Time from inclusion to final.")
    halt_allowance: int = Field(default=0, ge=0, description="Allowance for a chain halt.")


EVM_DEFAULT = ChainMargin(inclusion=120, finality=300)
"""L2s include within seconds; two minutes covers congestion and fee bumps, and five
minutes covers the `safe` head on Arbitrum, Optimism and Base."""

SOLANA_DEFAULT = ChainMargin(inclusion=90, finality=30, halt_allowance=6 * 3600)
"""Mainnet-beta halts have lasted about 5 to 19 hours; six hours is a floor an operator
should raise for large amounts."""


class Margins(BaseModel):
    """Margin settings of the coordinator: per-family defaults and per-chain overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    watcher_interval: int = Field(default=30, ge=1, description="Watchtower period, seconds.")
    evm: ChainMargin = EVM_DEFAULT
    solana: ChainMargin = SOLANA_DEFAULT
    chains: dict[str, ChainMargin] = Field(
        default_factory=dict, description="Overrides by chain name."
    )
    slack: int = Field(
        default=60,
        ge=0,
        description="Seconds added to each default deadline beyond the minimum, so checks "
        "made later (by us or a counterparty, on clocks that tick differently) still pass.",
    )
    max_lock: int = Field(
        default=7 * 86400,
        ge=60,
        description="Longest time a counterparty may lock our side's funds (seconds).",
    )

    def of(self, chain: str, family: str) -> ChainMargin:
        """The margin of chain `chain` of the family called `family`: the chain's
        override, else the family's setting (a field named after the family)."""
        if chain in self.chains:
            return self.chains[chain]
        margin = getattr(self, family, None)
        if not isinstance(margin, ChainMargin):
            raise ValueError(f"no timelock margin for chain family {family!r}")
        return margin

    def lock_time(self, chain: ChainMargin) -> int:
        """Time to get a lock included and final, and noticed by the watchtower."""
        return chain.inclusion + chain.finality + self.watcher_interval

    def claim_time(self, chain: ChainMargin) -> int:
        """Time to get a claim included before its deadline, through a halt."""
        return self.reveal_time(chain) + self.watcher_interval

    def reveal_time(self, chain: ChainMargin) -> int:
        """What a claim that reveals the preimage needs before its deadline once it is
        sent: inclusion, through a halt. The deadlines budget exactly this (plus the
        watcher's delay in noticing), so a claim is never refused on a schedule that
        went to plan; with less left the preimage would leak from the mempool unclaimed."""
        return chain.inclusion + chain.halt_allowance

    def reveal_gap(self, revealed_on: ChainMargin, claim_on: ChainMargin) -> int:
        """Minimum gap between the deadline of the leg that reveals and the next one:
        the reveal becomes final, the watcher sees it, the next claim gets included."""
        halts = max(revealed_on.halt_allowance, claim_on.halt_allowance)
        return revealed_on.finality + self.watcher_interval + claim_on.inclusion + halts

    def default_deadlines(self, now: int, reveal_order: Sequence[ChainMargin]) -> list[int]:
        """The minimum deadlines with `slack` added to each leg and to each gap."""
        minimum = self.minimum_deadlines(now, reveal_order)
        return [deadline + (index + 1) * self.slack for index, deadline in enumerate(minimum)]

    def minimum_deadlines(self, now: int, reveal_order: Sequence[ChainMargin]) -> list[int]:
        """The earliest safe deadline of each leg, legs given in the order they reveal.

        Every lock must land and be final before the first claim, which must land
        before the first deadline; each later deadline adds the reveal gap.
        """
        locking = sum(self.lock_time(chain) for chain in reveal_order)
        deadlines = [now + locking + self.claim_time(reveal_order[0])]
        for previous, chain in itertools.pairwise(reveal_order):
            deadlines.append(deadlines[-1] + self.reveal_gap(previous, chain))
        return deadlines
