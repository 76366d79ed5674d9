"""HumanApproval: above a threshold, a person approves the exact transaction."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from config.models import AgentConfig, Deployment
from config.types import Duration, PositiveAmount
from policies.actions import ProposedAction
from policies.base import ALLOW, Decision, NeedsApproval, Policy, PolicyContext, as_timedelta
from policies.prices import PriceProblem, price_deny, usd_value


class HumanApprovalParams(BaseModel):
    """Thresholds above which a person must approve; an approval's lifetime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    above_usd: PositiveAmount | None = None
    above: dict[str, PositiveAmount] = Field(
        default_factory=dict, description="Per-asset thresholds in asset units."
    )
    expires: Duration = Field(default=Decimal(3600), description="Approval lifetime.")


class HumanApproval(Policy):
    """Queue actions above a threshold for approval.

    The engine stores the request bound to the action's fingerprint (every field,
    including the transaction digest); `approvals approve ID` lets exactly that action
    through until the approval expires, once. Anything different is a new request.
    """

    Params = HumanApprovalParams

    def __init__(self, params: HumanApprovalParams) -> None:
        super().__init__(params)
        self._above_usd = params.above_usd
        self._above = params.above
        self._expires = as_timedelta(params.expires)

    @classmethod
    def problems(
        cls, params: BaseModel, deployment: Deployment, agent: AgentConfig
    ) -> Sequence[str]:
        """Asset thresholds must name known assets."""
        assert isinstance(params, HumanApprovalParams)
        symbols = {asset.symbol for asset in deployment.assets}
        return [f"unknown asset {s!r} in above" for s in params.above if s not in symbols]

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Ask for approval when the amount is above a threshold (or cannot be valued)."""
        limit = self._above.get(action.asset)
        if limit is not None and action.amount > limit:
            return self._ask(f"{action.amount} {action.asset} is above {limit} {action.asset}")
        if self._above_usd is None:
            return ALLOW
        usd = usd_value(ctx.prices, action, ctx.clock.now())
        if usd is None:
            return self._ask(f"no USD price for {action.asset} on {action.chain} to compare")
        if isinstance(usd, PriceProblem):
            # A price that is configured but cannot be trusted now is not a question for
            # a person shown a made-up dollar figure: it is refused, like every USD limit.
            return price_deny(usd)
        if usd > self._above_usd:
            return self._ask(f"${usd:.2f} is above ${self._above_usd}")
        return ALLOW

    def _ask(self, why: str) -> NeedsApproval:
        return NeedsApproval(reason=f"human approval required: {why}", expires_in=self._expires)
