"""Authority: the action must fall within the agent's verified authority credential."""

from __future__ import annotations

from datetime import timedelta

from policies.actions import ProposedAction
from policies.base import ALLOW, Decision, Deny, Policy, PolicyContext, PolicyEnv
from policies.prices import PriceProblem, price_deny, usd_value

_DAY = timedelta(days=1)


class Authority(Policy):
    """Deny anything the operator's credential does not grant: no credential, outside
    its validity, another chain or asset, or above its per-transaction or per-day limit.

    The claims arrive already verified (issuer, signature, subject) in the context.
    """

    def attach(self, env: PolicyEnv) -> None:
        """Keep a rolling one-day total for the per-day claims."""
        env.ledger.track(_DAY)

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Check every claim; the first one the action exceeds is the reason."""
        claims = ctx.claims
        if claims is None:
            return Deny(reason="no verified authority credential; issue one with the wallets CLI")
        now = ctx.clock.now()
        problem: str | PriceProblem | None = None
        if claims.agent != action.agent:
            problem = f"the credential is for agent {claims.agent!r}"
        elif not claims.not_before <= now < claims.expires_at:
            problem = (
                f"the credential is valid from {claims.not_before.isoformat()} to "
                f"{claims.expires_at.isoformat()}, not at {now.isoformat()}"
            )
        elif action.chain not in claims.chains:
            problem = f"chain {action.chain!r} is not granted (granted: {claims.chains})"
        elif action.asset not in claims.assets:
            problem = f"asset {action.asset!r} is not granted (granted: {claims.assets})"
        else:
            problem = self._over_limit(action, ctx) or self._over_usd(action, ctx)
        if isinstance(problem, PriceProblem):
            return price_deny(problem)
        if problem is None:
            return ALLOW
        return Deny(reason=f"outside the agent's authority: {problem}")

    @staticmethod
    def _over_limit(action: ProposedAction, ctx: PolicyContext) -> str | None:
        assert ctx.claims is not None
        per_tx = ctx.claims.per_transaction.get(action.asset)
        if per_tx is not None and action.amount > per_tx:
            return f"{action.amount} {action.asset} is above the per-transaction {per_tx}"
        per_day = ctx.claims.per_day.get(action.asset)
        if per_day is not None:
            total = ctx.spend.window_total(action.agent, action.asset, ctx.clock.now(), _DAY)
            if total > per_day:
                return f"{total} {action.asset} in 24h (with this one) is above per-day {per_day}"
        return None

    @staticmethod
    def _over_usd(action: ProposedAction, ctx: PolicyContext) -> str | PriceProblem | None:
        assert ctx.claims is not None
        per_tx, per_day = ctx.claims.per_transaction_usd, ctx.claims.per_day_usd
        if per_tx is None and per_day is None:
            return None
        now = ctx.clock.now()
        usd = usd_value(ctx.prices, action, now)
        if usd is None:
            return f"the credential limits USD and {action.asset} has no price in `prices:`"
        if isinstance(usd, PriceProblem):
            return usd
        if per_tx is not None and usd > per_tx:
            return f"${usd:.2f} is above the per-transaction ${per_tx}"
        if per_day is not None:
            total = ctx.spend.window_total_usd(action.agent, now, _DAY)
            if total > per_day:
                return f"${total:.2f} in 24h (with this one) is above per-day ${per_day}"
        return None
