"""The worked example of docs/writing-policies.md, kept here so the tests run it.

The text of docs/writing-policies.md shows this file verbatim; a test checks they agree.
"""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from config.types import PositiveAmount
from policies import ALLOW, Decision, Deny, Policy, PolicyContext, ProposedAction


class WeekendFreezeParams(BaseModel):
    """YAML parameters of WeekendFreeze."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    starts: time = Field(default=time(18, 0), description="Friday, local time.")
    ends: time = Field(default=time(8, 0), description="Monday, local time.")
    allow_below_usd: PositiveAmount | None = Field(
        default=None, description="Small payments still pass during the freeze."
    )


class WeekendFreeze(Policy):
    """No payments from Friday evening to Monday morning, when nobody watches."""

    Params = WeekendFreezeParams

    def __init__(self, params: WeekendFreezeParams) -> None:
        super().__init__(params)
        self.p = params
        self.zone = ZoneInfo(params.timezone)

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        local = ctx.clock.now().astimezone(self.zone)
        day, now = local.weekday(), local.time()
        frozen = (
            (day == 4 and now >= self.p.starts) or day in (5, 6) or (day == 0 and now < self.p.ends)
        )
        if not frozen or self._small(action, ctx):
            return ALLOW
        return Deny(reason=f"weekend freeze until Monday {self.p.ends} {self.p.timezone}")

    def _small(self, action: ProposedAction, ctx: PolicyContext) -> bool:
        price = ctx.prices.usd_price(action.chain, action.asset)
        limit = self.p.allow_below_usd
        return limit is not None and price is not None and action.amount * price < limit
