"""SwapRate: a swap leg is allowed only at a price the operator set a floor for.

A mandate such as "only when the offer gives at least 19.6 SOL per ETH" is otherwise a
judgement the model makes, and a small model misjudges a price from two amounts. This
policy makes the floor an invariant: a ``swap_leg`` that gives `give` and gets `take` in
return (``ProposedAction.receives``) must get at least `at_least` of `take` per unit of
`give`. A pair no floor names is denied unless `unlisted: allow`, as SpendLimit does for
assets: a price nobody set is no price to trade at. Other kinds, and a leg with nothing
in return (a multi-chain payment's), are not swaps and pass.

The floor is in asset units (a rate), not USD: it holds whatever the feeds say.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from config.models import AgentConfig, Deployment
from config.types import PositiveAmount, plain_amount
from policies.actions import Intent, ProposedAction
from policies.base import ALLOW, Decision, Deny, Policy, PolicyContext

_SHOWN = Decimal("0.0001")  # the rate in a reason, rounded down: never shown as met


class RateFloor(BaseModel):
    """At least `at_least` of `take` for each unit of `give`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    give: str = Field(pattern=r"^[A-Z][A-Z0-9.]{0,15}$", description="The asset the agent gives.")
    take: str = Field(pattern=r"^[A-Z][A-Z0-9.]{0,15}$", description="The asset it receives.")
    at_least: PositiveAmount = Field(description="Units of `take` per unit of `give`.")


class SwapRateParams(BaseModel):
    """The price floors of the agent's swaps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    floors: list[RateFloor] = Field(min_length=1)
    unlisted: Literal["deny", "allow"] = Field(
        default="deny", description="A swap of a pair no floor names."
    )


class SwapRate(Policy):
    """Deny a swap leg whose price is below the floor of its pair."""

    Params = SwapRateParams

    def __init__(self, params: SwapRateParams) -> None:
        super().__init__(params)
        self._p = params
        self._floors = {(f.give, f.take): f.at_least for f in params.floors}

    @classmethod
    def problems(
        cls, params: BaseModel, deployment: Deployment, agent: AgentConfig
    ) -> Sequence[str]:
        """Each floor's assets must be assets of the deployment, and one floor a pair."""
        assert isinstance(params, SwapRateParams)
        symbols = {asset.symbol for asset in deployment.assets}
        found = [
            f"floor {f.give}->{f.take}: asset {symbol!r} is not in the deployment's assets"
            for f in params.floors
            for symbol in (f.give, f.take)
            if symbol not in symbols
        ]
        pairs = [(f.give, f.take) for f in params.floors]
        found += [
            f"floor {give}->{take} is given twice"
            for give, take in set(pairs)
            if pairs.count((give, take)) > 1
        ]
        return found

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Allow a swap leg at or above its pair's floor."""
        reason = self._below(action)
        return ALLOW if reason is None else Deny(reason=reason)

    def screen(self, intent: Intent, ctx: PolicyContext) -> str | None:
        """The same judgement: it depends on the two legs alone."""
        return self._below(intent)

    def _below(self, action: ProposedAction | Intent) -> str | None:
        back = action.receives
        if action.kind != "swap_leg" or back is None:
            return None
        floor = self._floors.get((action.asset, back.asset))
        pair = f"{back.asset} per {action.asset}"
        if floor is None:
            if self._p.unlisted == "allow":
                return None
            return (
                f"no rate floor for {pair}, so the swap is denied; add one to SwapRate, "
                f'e.g. `floors: [{{give: {action.asset}, take: {back.asset}, at_least: "<rate>"}}]`'
            )
        if back.amount < floor * action.amount:  # exact: no division, no rounding
            rate = (back.amount / action.amount).quantize(_SHOWN, rounding=ROUND_FLOOR)
            return f"rate {plain_amount(rate)} {pair} is below the floor {plain_amount(floor)}"
        return None
