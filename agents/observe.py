"""Build what an agent sees at a tick: balances, prices, approvals, recent outcomes.

Every read is best-effort per chain: an unreachable RPC leaves that chain's balances out
(and says so in the outcomes) instead of failing the whole tick, because the planner can
still decide not to act, and the policies still gate anything it proposes.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal

from agents.planners.types import Balance, Observation, Outcome, PendingApproval, Price
from chains.base import ChainAdapter
from config.errors import ChainError
from config.models import AgentConfig, Asset, Deployment
from wallets.operator import AgentWallet

log = logging.getLogger(__name__)

RECENT_OUTCOMES = 8


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
    ) -> None:
        self.deployment = deployment
        self.agent = agent
        self.wallet = wallet
        self.adapters = adapters
        self.outcomes: deque[Outcome] = deque(maxlen=RECENT_OUTCOMES)

    def remember(self, summary: str, *, ok: bool) -> None:
        """Keep an outcome for the next observations (written by Covenant, trusted)."""
        self.outcomes.append(Outcome(at=datetime.now(UTC), summary=summary[:300], ok=ok))

    async def observe(self, pending: list[PendingApproval]) -> Observation:
        """The observation for this tick."""
        balances: list[Balance] = []
        for asset in agent_assets(self.deployment, self.agent):
            balance = await self._balance(asset)
            if balance is not None:
                balances.append(balance)
        prices = [
            Price(asset=f"{asset.symbol}@{asset.chain}", usd=asset.usd_price)
            for asset in agent_assets(self.deployment, self.agent)
            if asset.usd_price is not None
        ]
        return Observation(
            agent=self.agent.name,
            at=datetime.now(UTC),
            mandate=self.agent.mandate,
            balances=tuple(balances),
            prices=tuple(prices),
            pending_approvals=tuple(pending),
            recent_outcomes=tuple(self.outcomes),
        )

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
