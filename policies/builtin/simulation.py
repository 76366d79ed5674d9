"""RequireSimulation: the transaction must simulate cleanly and move what it says."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from config.types import NonNegativeAmount
from policies.actions import ProposedAction
from policies.base import ALLOW, Decision, Deny, Policy, PolicyContext, PolicyEnv

_ZERO = Decimal(0)


class RequireSimulationParams(BaseModel):
    """Per-asset slack allowed between the simulated and the intended balance change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tolerance: dict[str, NonNegativeAmount] = Field(default_factory=dict)


class RequireSimulation(Policy):
    """Deny unless a simulation of this exact transaction succeeded and its balance
    changes are exactly the intent: minus the amount in the action's asset, minus the fee
    in the native coin, and nothing else."""

    Params = RequireSimulationParams

    def __init__(self, params: RequireSimulationParams | None = None) -> None:
        super().__init__(params)
        self._tolerance = params.tolerance if params else {}
        self._native: dict[str, str] = {}

    def attach(self, env: PolicyEnv) -> None:
        """Learn each chain's native coin, which pays the fee."""
        self._native = {a.chain: a.symbol for a in env.deployment.assets if a.native}

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Compare the simulation of this digest with the intended balance changes."""
        sim = ctx.simulation
        if sim is None:
            return Deny(reason="no simulation result; simulate the transaction first")
        if sim.digest != action.digest or sim.chain != action.chain:
            return Deny(reason="the simulation is of a different transaction than this action")
        if not sim.success:
            return Deny(reason=f"the simulation failed: {sim.error or 'no reason given'}")
        expected = self._expected(action, sim.fee)
        for asset in sorted(set(expected) | set(sim.balance_changes)):
            want = expected.get(asset, _ZERO)
            got = sim.balance_changes.get(asset, _ZERO)
            if abs(got - want) > self._tolerance.get(asset, _ZERO):
                return Deny(
                    reason=f"simulated balance change of {asset} is {got}, the intent is "
                    f"{want}; refusing a transaction that does not do what it says"
                )
        return ALLOW

    def _expected(self, action: ProposedAction, fee: Decimal) -> dict[str, Decimal]:
        expected = {action.asset: -action.amount}
        native = self._native.get(action.chain)
        if native is not None and fee:
            expected[native] = expected.get(native, _ZERO) - fee
        return expected
