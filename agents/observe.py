"""Build what an agent sees at a tick: balances, prices, tasks, approvals, recent outcomes.

Every read is best-effort per chain: an unreachable RPC leaves that chain's balances out
(and says so in the outcomes) instead of failing the whole tick, because the planner can
still decide not to act, and the policies still gate anything it proposes.

Balances are read concurrently and reused for :data:`BALANCE_TTL` seconds. A reused
balance is at most that old and only ever feeds the planner: the policies check real
state and the chain refuses an overspend. The agent's own transactions drop the cache at
once (every action's outcome goes through :meth:`Observer.remember`), so a stale reading
can only miss what others sent to the agent in the last second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from agents.planners.types import Balance, Observation, Outcome, PendingApproval, Price
from agents.prices import PriceReader
from agents.sources import Source, SourceError
from agents.tasks import Task
from chains.base import ChainAdapter
from config.errors import ChainError
from config.models import AgentConfig, Asset, Deployment
from policies.prices import PriceProblem
from wallets.operator import AgentWallet

log = logging.getLogger(__name__)

RECENT_OUTCOMES = 8

BALANCE_TTL = 1.0
"""Seconds a balance reading is reused for the next observations (0: never)."""


def agent_assets(deployment: Deployment, agent: AgentConfig) -> list[Asset]:
    """Assets the agent may hold and move: on its chains, filtered by its asset list."""
    return [
        asset
        for asset in deployment.assets
        if asset.chain in agent.chains and (not agent.assets or asset.symbol in agent.assets)
    ]


class Observer:
    """Reads the world for one agent and remembers its recent outcomes."""

    def __init__(
        self,
        deployment: Deployment,
        agent: AgentConfig,
        wallet: AgentWallet,
        adapters: dict[str, ChainAdapter],
        *,
        sources: Sequence[Source[Any]] = (),
        balance_ttl: float = BALANCE_TTL,
        prices: PriceReader | None = None,
    ) -> None:
        self.deployment = deployment
        self.agent = agent
        self.wallet = wallet
        self.adapters = adapters
        self.balance_ttl = balance_ttl
        self.sources = tuple(sources)
        self.prices = prices
        self.outcomes: deque[Outcome] = deque(maxlen=RECENT_OUTCOMES)
        self.settled: set[str] = set()
        """Tasks (``source/id``) this agent paid since it started: no longer open, so
        left out of its observations. Memory only: after a restart DuplicateGuard, which
        persists, still refuses to pay one twice; this only spares the model the choice."""
        self._assets = agent_assets(deployment, agent)
        self._balances: dict[tuple[str, str], tuple[float, Balance]] = {}

    def remember(self, summary: str, *, ok: bool) -> None:
        """Keep an outcome for the next observations (written by Covenant, trusted).

        An outcome follows an action, which may have moved funds: balances are read anew.
        """
        self.forget_balances()
        self.outcomes.append(Outcome(at=datetime.now(UTC), summary=summary[:300], ok=ok))

    def forget_balances(self) -> None:
        """Drop the reused balances; the next observation reads every one from its chain.
        Call it whenever the agent sends a transaction outside :meth:`remember`."""
        self._balances.clear()

    async def observe(self, pending: list[PendingApproval]) -> Observation:
        """The observation for this tick."""
        read = await asyncio.gather(*(self._cached_balance(asset) for asset in self._assets))
        tasks, problems = await self._tasks()
        prices, price_problems = await self._prices()
        problems += price_problems
        return Observation(
            agent=self.agent.name,
            at=datetime.now(UTC),
            mandate=self.agent.mandate,
            balances=tuple(balance for balance in read if balance is not None),
            prices=tuple(prices),
            pending_approvals=tuple(pending),
            recent_outcomes=(*self.outcomes, *problems),
            tasks=tasks,
        )

    async def _prices(self) -> tuple[list[Price], list[Outcome]]:
        """Each asset's judged price with its source and age, after refreshing the feeds
        (without a reader: the fixed `usd_price` of each asset that sets one)."""
        if self.prices is None:
            fixed = [(a, a.usd_price) for a in self._assets if a.usd_price is not None]
            return [Price(asset=f"{a.symbol}@{a.chain}", usd=usd) for a, usd in fixed], []
        await self.prices.refresh(self._assets)
        found, problems, now = [], [], self.prices.clock.now()
        for asset in self._assets:
            quote = self.prices.prices.quote(asset.chain, asset.symbol, now)
            if isinstance(quote, PriceProblem):
                problems.append(Outcome(at=now, summary=quote.reason[:300], ok=False))
            elif quote is not None:
                ages = [s.age for s in quote.sources if s.age is not None]
                source = "; ".join(s.source for s in quote.sources)[:400]
                name = f"{asset.symbol}@{asset.chain}"
                found.append(
                    Price(asset=name, usd=quote.usd, source=source, age=max(ages, default=None))
                )
        return found, problems

    async def _tasks(self) -> tuple[tuple[Task, ...], list[Outcome]]:
        """Every source's tasks, and an outcome for each problem (this tick only: a source
        that stays broken must not push the agent's own outcomes out of its memory)."""
        reads = await asyncio.gather(
            *(source.read() for source in self.sources), return_exceptions=True
        )
        tasks: dict[str, Task] = {}  # by id, in the order the sources gave them
        problems: list[str] = []
        for read in reads:
            if isinstance(read, SourceError):
                log.warning("agent %s: %s", self.agent.name, read)
                problems.append(str(read))
            elif isinstance(read, BaseException):
                raise read
            else:
                problems += read.skipped
                for task in read.tasks:
                    if task.reference in self.settled:
                        continue
                    if task.id in tasks:
                        # A plan names a task by id: two with one id are ambiguous.
                        problems.append(
                            f"source {task.source}: task {task.id} left out: another "
                            "source already gave a task with that id"
                        )
                    else:
                        tasks[task.id] = task
        now = datetime.now(UTC)
        return tuple(tasks.values()), [Outcome(at=now, summary=p[:300], ok=False) for p in problems]

    async def _cached_balance(self, asset: Asset) -> Balance | None:
        key = (asset.chain, asset.symbol)
        cached = self._balances.get(key)
        started = time.monotonic()
        if cached is not None and started - cached[0] < self.balance_ttl:
            return cached[1]
        balance = await self._balance(asset)
        if balance is not None and self.balance_ttl > 0:
            # Aged from before the read, so a reading is never reused past the TTL.
            self._balances[key] = (started, balance)
        return balance

    async def _balance(self, asset: Asset) -> Balance | None:
        adapter = self.adapters.get(asset.chain)
        if adapter is None:
            return None
        address = self.wallet.address(self.deployment, asset.chain)
        try:
            raw = await adapter.balance(address, asset if not asset.native else None)
        except ChainError as exc:
            log.warning(
                "agent %s: balance of %s on %s unavailable: %s",
                self.agent.name,
                asset.symbol,
                asset.chain,
                exc,
            )
            self.remember(f"balance of {asset.symbol} on {asset.chain} unavailable", ok=False)
            return None
        amount = Decimal(raw).scaleb(-asset.decimals)
        return Balance(chain=asset.chain, asset=asset.symbol, amount=amount)
