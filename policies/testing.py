"""A kit for testing policies: a fake clock, a small deployment, actions, contexts and
assertions. Nothing here touches a chain or a key.

    from policies.testing import FakeClock, make_action, make_context, assert_denies

    async def test_weekend_freeze_denies_on_saturday() -> None:
        clock = FakeClock(datetime(2026, 1, 3, 12, tzinfo=UTC))  # a Saturday
        policy = WeekendFreeze(WeekendFreezeParams())
        await assert_denies(policy, make_action(), make_context(clock=clock), "weekend")
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from chains.families import FAMILIES
from config.models import Deployment
from policies.actions import ConfidenceEvidence, ProposedAction
from policies.base import (
    AuthorityClaims,
    Decision,
    Deny,
    NeedsApproval,
    Policy,
    PolicyContext,
    PolicyEnv,
    PriceSource,
    SimulationResult,
    StaticPrices,
)
from policies.ledger import SpendLedger

SUPPLIER_EVM = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SUPPLIER_SOLANA = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday

    def now(self) -> datetime:
        """The fake current time."""
        return self._now

    def advance(self, by: timedelta | float = 0, **units: float) -> datetime:
        """Move forward by `by` (seconds or a timedelta) or timedelta keywords."""
        step = by if isinstance(by, timedelta) else timedelta(seconds=by)
        self._now += step + timedelta(**units)
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (timezone-aware)."""
        self._now = moment


def make_deployment(
    policies: Sequence[dict[str, Any]] = ({"KillSwitch": {}},),
    *,
    agents: Sequence[str] = ("payer",),
    data_dir: str | None = None,
    address_book: Sequence[dict[str, Any]] = (),
) -> Deployment:
    """A deployment with one EVM and one Solana chain, ETH ($3000) and SOL ($150), the
    address-book entry `acme-supplier` (plus `address_book`), and `agents` that all use
    `policies`."""
    return Deployment.model_validate(
        {
            "name": "kit",
            "data_dir": data_dir,
            "operator": {"name": "kit-operator"},
            "chains": [family.local_example() for family in FAMILIES],
            "assets": [
                {
                    "symbol": "ETH",
                    "chain": "evm-local",
                    "native": True,
                    "decimals": 18,
                    "usd_price": "3000",
                },
                {
                    "symbol": "SOL",
                    "chain": "solana-local",
                    "native": True,
                    "decimals": 9,
                    "usd_price": "150",
                },
            ],
            "address_book": [
                {
                    "name": "acme-supplier",
                    "addresses": {"evm-local": SUPPLIER_EVM, "solana-local": SUPPLIER_SOLANA},
                },
                *address_book,
            ],
            "planners": [{"name": "script", "kind": "scripted"}],
            "agents": [
                {
                    "name": name,
                    "schedule": {"every": "30s"},
                    "mandate": "Pay invoices.",
                    "planner": "script",
                    "chains": ["evm-local", "solana-local"],
                    "policies": list(policies),
                }
                for name in agents
            ],
        }
    )


_DECIMALS = {"ETH": 18, "SOL": 9}


def make_action(**fields: Any) -> ProposedAction:
    """A transfer of 0.05 ETH to acme-supplier on evm-local; override any field.

    Unless given, `amount_base_units` follows `amount` and the digest is a hash of the
    other fields, so actions that differ anywhere have different digests.
    """
    values: dict[str, Any] = {
        "agent": "payer",
        "plan_id": "plan-1",
        "kind": "transfer",
        "chain": "evm-local",
        "asset": "ETH",
        "amount": Decimal("0.05"),
        "recipient": "acme-supplier",
        "recipient_address": SUPPLIER_EVM,
        "selector": None,
    }
    values.update(fields)
    values["amount"] = Decimal(str(values["amount"]))
    if values["chain"] == "solana-local" and "recipient_address" not in fields:
        values["recipient_address"] = SUPPLIER_SOLANA
    if "amount_base_units" not in fields:
        scale = _DECIMALS.get(values["asset"], 18)
        values["amount_base_units"] = int(values["amount"].scaleb(scale))
    if "digest" not in fields:
        text = repr(sorted((key, str(value)) for key, value in values.items()))
        values["digest"] = hashlib.sha256(text.encode()).digest()
    return ProposedAction.model_validate(values)


def make_evidence(score: Decimal | str = "0.9", *, repairs: int = 0) -> ConfidenceEvidence:
    """Evidence whose derived score is `score` (before repair penalties)."""
    value = Decimal(str(score))
    return ConfidenceEvidence(
        self_reported=value, sample_agreement=value, samples=3, repair_count=repairs
    )


def make_claims(
    agent: str = "payer",
    *,
    chains: Sequence[str] = ("evm-local", "solana-local"),
    assets: Sequence[str] = ("ETH", "SOL"),
    per_transaction: dict[str, str] | None = None,
    per_day: dict[str, str] | None = None,
    valid_from: datetime | None = None,
    valid_for: timedelta = timedelta(days=365),
) -> AuthorityClaims:
    """Verified authority claims for `agent` (the credential itself is not built)."""
    start = valid_from or datetime(2026, 1, 1, tzinfo=UTC)
    return AuthorityClaims.model_validate(
        {
            "subject": f"did:key:z6Mk{agent}",
            "issuer": "did:key:z6MkOperator",
            "agent": agent,
            "chains": list(chains),
            "assets": list(assets),
            "per_transaction": per_transaction or {},
            "per_day": per_day or {},
            "not_before": start,
            "expires_at": start + valid_for,
        }
    )


def make_simulation(
    action: ProposedAction, *, fee: str = "0.0001", **changes: str
) -> SimulationResult:
    """A successful simulation of `action` that moves exactly its amount (plus the fee in
    the native coin); `changes` overrides balance changes by asset symbol."""
    balance = {action.asset: -action.amount}
    native = {"evm-local": "ETH", "solana-local": "SOL"}.get(action.chain)
    if native is not None:
        balance[native] = balance.get(native, Decimal(0)) - Decimal(fee)
    balance.update({asset: Decimal(value) for asset, value in changes.items()})
    return SimulationResult(
        chain=action.chain,
        digest=action.digest,
        success=True,
        balance_changes=balance,
        fee=Decimal(fee),
    )


def make_context(
    *,
    deployment: Deployment | None = None,
    agent: str = "payer",
    clock: FakeClock | None = None,
    evidence: ConfidenceEvidence | None = None,
    claims: AuthorityClaims | None = None,
    simulation: SimulationResult | None = None,
    ledger: SpendLedger | None = None,
    prices: PriceSource | None = None,
    plan_id: str = "plan-1",
) -> PolicyContext:
    """A context for `agent` with confident evidence and an empty spend history."""
    deployment = deployment or make_deployment()
    return PolicyContext(
        agent=deployment.agent(agent),
        deployment=deployment,
        plan_id=plan_id,
        evidence=evidence or make_evidence(),
        clock=clock or FakeClock(),
        prices=prices or StaticPrices.from_deployment(deployment),
        spend=ledger or SpendLedger(),
        claims=claims,
        simulation=simulation,
    )


def attach(policy: Policy, ctx: PolicyContext) -> Policy:
    """Attach `policy` to the context's agent without a store (memory only)."""
    ledger = ctx.spend if isinstance(ctx.spend, SpendLedger) else SpendLedger()
    policy.attach(
        PolicyEnv(
            deployment=ctx.deployment,
            agent=ctx.agent,
            clock=ctx.clock,
            prices=ctx.prices,
            ledger=ledger,
        )
    )
    return policy


async def assert_allows(policy: Policy, action: ProposedAction, ctx: PolicyContext) -> None:
    """Fail unless `policy` allows `action`."""
    decision = await policy.evaluate(action, ctx)
    assert decision.verdict == "allow", f"{policy.name} did not allow: {decision!r}"


async def assert_denies(
    policy: Policy, action: ProposedAction, ctx: PolicyContext, reason_contains: str = ""
) -> Deny:
    """Fail unless `policy` denies `action` with a reason containing `reason_contains`."""
    decision = await policy.evaluate(action, ctx)
    assert isinstance(decision, Deny), f"{policy.name} did not deny: {decision!r}"
    assert reason_contains.lower() in decision.reason.lower(), (
        f"{policy.name} denied for {decision.reason!r}, expected {reason_contains!r}"
    )
    return decision


async def assert_needs_approval(
    policy: Policy, action: ProposedAction, ctx: PolicyContext
) -> NeedsApproval:
    """Fail unless `policy` asks for approval of `action`."""
    decision: Decision = await policy.evaluate(action, ctx)
    assert isinstance(decision, NeedsApproval), f"{policy.name} did not ask: {decision!r}"
    return decision
