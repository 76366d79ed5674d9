"""SpendLimit: per-transaction and rolling-window limits, per asset or in USD."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from config.models import AgentConfig, Deployment
from config.types import Duration, PositiveAmount
from policies.actions import Intent, ProposedAction
from policies.base import ALLOW, Decision, Deny, Policy, PolicyContext, PolicyEnv, as_timedelta
from policies.prices import PriceProblem, price_deny, usd_value
from policies.shared_limits import USD, Cap

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
    unlisted: Literal["deny", "allow"] = Field(
        default="deny",
        description="An asset no limit here covers (not named, and no USD limit) is denied "
        "unless this is `allow`.",
    )

    def limited_assets(self) -> frozenset[str]:
        """Assets named in a per-asset limit."""
        named = {*self.per_transaction, *self.per_day}
        return frozenset(named.union(*(w.limits for w in self.windows)))

    def has_usd_limit(self) -> bool:
        """Whether a USD limit covers every (priced) asset."""
        windowed = any(w.usd is not None for w in self.windows)
        return windowed or self.per_transaction_usd is not None or self.per_day_usd is not None

    def all_windows(self) -> list[tuple[timedelta, dict[str, Decimal], Decimal | None]]:
        """Every rolling window, the per-day one included."""
        found = [(as_timedelta(w.per), dict(w.limits), w.usd) for w in self.windows]
        if self.per_day or self.per_day_usd:
            found.append((_DAY, dict(self.per_day), self.per_day_usd))
        return found


class SpendLimit(Policy):
    """Deny an action that would take spending above a limit.

    Amounts are in asset units across all chains carrying that symbol; USD limits value
    each action at its price when it is evaluated, judged fresh and agreed by
    :mod:`policies.prices`. An action whose asset has no price, or whose price is stale,
    out of band or disputed, is denied by a USD limit, since it cannot be shown to fit. An
    asset that no limit covers (not named, and no USD limit) is denied unless the
    parameters say `unlisted: allow`: a forgotten limit must not mean no limit.
    """

    Params = SpendLimitParams

    def __init__(self, params: SpendLimitParams) -> None:
        super().__init__(params)
        self._p = params
        self._windows = params.all_windows()
        self._in_memory = self._windows
        """The windows judged here from the ledger's memory (all but in cluster mode)."""
        self._needs_usd = params.has_usd_limit()
        self._limited = params.limited_assets()
        self._open = params.unlisted == "allow" or self._needs_usd
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
        """Ask the ledger to keep running totals for this policy's windows; in cluster
        mode a deployment's windows are judged in the store instead, where every daemon's
        reservations meet (`policies/shared_limits.py`)."""
        self._who = env.agent.name if self._p.scope == "agent" else None
        for length, _, _ in self._windows:
            env.ledger.track(length)
        shared = env.ledger.shared_limits
        self._in_memory = self._windows
        if self._who is None and shared is not None:
            caps = [
                Cap(length, key, limit)
                for length, limits, usd in self._windows
                for key, limit in [*limits.items(), *([(USD, usd)] if usd else [])]
            ]
            shared.cap(env.agent.name, caps)
            self._in_memory = []  # memory holds only this daemon's share of the deployment

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Check that a limit covers the asset, the per-transaction limits, then every
        rolling window."""
        if not self._open and action.asset not in self._limited:
            return Deny(reason=self._unlisted(action))
        usd = None
        if self._needs_usd:
            valued = usd_value(ctx.prices, action, ctx.clock.now())
            if valued is None:
                return Deny(
                    reason=f"no USD price for {action.asset} on {action.chain}; add it to "
                    "`prices:` (a chainlink, pyth or fixed source) for USD limits"
                )
            if isinstance(valued, PriceProblem):
                return price_deny(valued)
            usd = valued
        reason = self._per_transaction(action, usd) or self._rolling(action, usd, ctx)
        return ALLOW if reason is None else Deny(reason=reason)

    def screen(self, intent: Intent, ctx: PolicyContext) -> str | None:
        """An asset without a limit, or an amount above its per-transaction limit, is
        denied whatever the transaction (the rolling windows depend on what else is
        reserved by then, so they are left to :meth:`evaluate`)."""
        if not self._open and intent.asset not in self._limited:
            return self._unlisted(intent)
        return self._per_transaction(intent, None)

    def _unlisted(self, action: ProposedAction | Intent) -> str:
        named = ", ".join(sorted(self._limited)) or "none"
        return (
            f"SpendLimit sets no limit for {action.asset} (on {action.chain}; limited: "
            f"{named}), so it is denied; in the agent's YAML add one, e.g. "
            f'`SpendLimit: {{per_day: {{{action.asset}: "<limit>"}}}}` or a USD limit such as '
            "`per_day_usd`, or set `unlisted: allow` to let assets without a limit through"
        )

    def _per_transaction(self, action: ProposedAction | Intent, usd: Decimal | None) -> str | None:
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
        for length, limits, usd_cap in self._in_memory:
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
