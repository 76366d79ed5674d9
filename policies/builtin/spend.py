"""SpendLimit: per-transaction and rolling-window limits, per asset or in USD."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from config.models import AgentConfig, Deployment
from config.types import Duration, PositiveAmount
from policies.actions import ProposedAction
from policies.base import ALLOW, Decision, Deny, Policy, PolicyContext, PolicyEnv, as_timedelta

_DAY = timedelta(days=1)


class SpendWindow(BaseModel):
    """Limits over one rolling window, e.g. `{per: 1h, limits: {ETH: "0.5"}, usd: "1000"}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per: Duration
    limits: dict[str, PositiveAmount] = Field(default_factory=dict)
    usd: PositiveAmount | None = None


class SpendLimitParams(BaseModel):
    """Limits per transaction and per rolling window; `scope` says whose spending counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_transaction: dict[str, PositiveAmount] = Field(default_factory=dict)
    per_day: dict[str, PositiveAmount] = Field(default_factory=dict)
    per_transaction_usd: PositiveAmount | None = None
    per_day_usd: PositiveAmount | None = None
    windows: list[SpendWindow] = Field(default_factory=list)
    scope: Literal["agent", "deployment"] = Field(
        default="agent", description="`deployment` counts every agent's spending together."
    )

    def all_windows(self) -> list[tuple[timedelta, dict[str, Decimal], Decimal | None]]:
        """Every rolling window, the per-day one included."""
        found = [(as_timedelta(w.per), dict(w.limits), w.usd) for w in self.windows]
        if self.per_day or self.per_day_usd:
            found.append((_DAY, dict(self.per_day), self.per_day_usd))
        return found


class SpendLimit(Policy):
    """Deny an action that would take spending above a limit.

    Amounts are in asset units across all chains carrying that symbol; USD limits value
    each action at the price source's price when it was authorized. An action whose
    asset has no price is denied by a USD limit, since it cannot be shown to fit.
    """

    Params = SpendLimitParams

    def __init__(self, params: SpendLimitParams) -> None:
        super().__init__(params)
        self._p = params
        self._windows = params.all_windows()
        self._needs_usd = bool(params.per_transaction_usd) or any(w[2] for w in self._windows)
        self._who: str | None = None

    @classmethod
    def problems(
        cls, params: BaseModel, deployment: Deployment, agent: AgentConfig
    ) -> Sequence[str]:
        """Every asset symbol must be defined in the deployment."""
        assert isinstance(params, SpendLimitParams)
        symbols = {asset.symbol for asset in deployment.assets}
        named = [*params.per_transaction, *params.per_day]
        named += [s for w in params.windows for s in w.limits]
        return [
            f"unknown asset {s!r}; defined assets: {sorted(symbols)}"
            for s in dict.fromkeys(named)
            if s not in symbols
        ]

    def attach(self, env: PolicyEnv) -> None:
        """Ask the ledger to keep running totals for this policy's windows."""
        self._who = env.agent.name if self._p.scope == "agent" else None
        for length, _, _ in self._windows:
            env.ledger.track(length)

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Check the per-transaction limits, then every rolling window."""
        usd = None
        if self._needs_usd:
            price = ctx.prices.usd_price(action.chain, action.asset)
            if price is None:
                return Deny(
                    reason=f"no USD price for {action.asset} on {action.chain}; set "
                    "assets[].usd_price or configure a price source for USD limits"
                )
            usd = action.amount * price
        reason = self._per_transaction(action, usd) or self._rolling(action, usd, ctx)
        return ALLOW if reason is None else Deny(reason=reason)

    def _per_transaction(self, action: ProposedAction, usd: Decimal | None) -> str | None:
        limit = self._p.per_transaction.get(action.asset)
        if limit is not None and action.amount > limit:
            return f"{action.amount} {action.asset} is above the per-transaction limit {limit}"
        cap = self._p.per_transaction_usd
        if cap is not None and usd is not None and usd > cap:
            return f"${usd:.2f} is above the per-transaction limit ${cap}"
        return None

    def _rolling(
        self, action: ProposedAction, usd: Decimal | None, ctx: PolicyContext
    ) -> str | None:
        now = ctx.clock.now()
        whose = "this agent" if self._who else "the deployment"
        for length, limits, usd_cap in self._windows:
            limit = limits.get(action.asset)
            if limit is not None:
                total = ctx.spend.window_total(self._who, action.asset, now, length)
                if total > limit:
                    return (
                        f"{action.amount} {action.asset} would bring {whose}'s spending to "
                        f"{total} in {length}, above the limit {limit}"
                    )
            if usd_cap is not None and usd is not None:
                total = ctx.spend.window_total_usd(self._who, now, length)
                if total > usd_cap:
                    return (
                        f"${usd:.2f} would bring {whose} to ${total:.2f} in {length}, "
                        f"above ${usd_cap}"
                    )
        return None
