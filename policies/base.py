"""Interfaces of the policy layer: decisions, the context, the clock, prices, policies.

A policy answers one question about one action: may it go ahead? It answers with a
:data:`Decision` and never by raising; the engine treats a raised exception as a deny
and logs the cause. Policies hold no key material and cannot authorize anything: only
:class:`policies.engine.Engine` mints an authorization, after every policy allowed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from config.models import AgentConfig, Deployment
from config.types import Name, NonNegativeAmount, PositiveAmount
from policies.actions import ConfidenceEvidence, Intent, ProposedAction

if TYPE_CHECKING:
    from policies._store import PolicyStore
    from policies.ledger import SpendLedger


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Allow(_Value):
    """The policy has no objection."""

    verdict: Literal["allow"] = "allow"


class Deny(_Value):
    """The action must not happen; `reason` says why in words an operator can act on."""

    verdict: Literal["deny"] = "deny"
    reason: str = Field(min_length=1)
    cause: Literal["policy", "price"] = Field(
        default="policy",
        description="`price`: no usable price for a USD figure (policies.prices.price_deny); "
        "the engine then shows every policy of the agent the failure (on_price_failure).",
    )


class NeedsApproval(_Value):
    """A person must approve this exact transaction before it may be signed."""

    verdict: Literal["needs_approval"] = "needs_approval"
    reason: str = Field(min_length=1)
    expires_in: timedelta | None = Field(
        default=None, description="How long an approval stays valid; engine default if None."
    )


Decision = Allow | Deny | NeedsApproval

ALLOW = Allow()
"""The shared allow decision; policies may return it instead of building their own."""


class NoParams(_Value):
    """Parameters of a policy that takes none."""


class Clock(Protocol):
    """Where policies read the time; tests use :class:`policies.testing.FakeClock`."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)


class PriceSource(ABC):
    """USD prices for USD-normalised limits."""

    @abstractmethod
    def usd_price(self, chain: str, asset: str) -> Decimal | None:
        """The USD price of one unit of `asset` on `chain`, or None if unknown."""


class StaticPrices(PriceSource):
    """Fixed prices, by default the deployment's `assets[].usd_price`."""

    def __init__(self, prices: dict[tuple[str, str], Decimal]) -> None:
        self._prices = dict(prices)

    @classmethod
    def from_deployment(cls, deployment: Deployment) -> StaticPrices:
        """Prices from the `usd_price` of each asset that sets one."""
        return cls({(a.chain, a.symbol): a.usd_price for a in deployment.assets if a.usd_price})

    def usd_price(self, chain: str, asset: str) -> Decimal | None:
        """The configured price, or None."""
        return self._prices.get((chain, asset))


class AuthorityClaims(_Value):
    """The already-verified claims of an agent's authority credential.

    The wallets layer verifies the credential (issuer, signature, subject); policies only
    check that an action falls inside what it grants.
    """

    subject: str = Field(min_length=1, description="The agent's DID.")
    issuer: str = Field(min_length=1, description="The operator's DID.")
    agent: Name
    chains: list[Name] = Field(default_factory=list)
    assets: list[str] = Field(default_factory=list)
    per_transaction: dict[str, PositiveAmount] = Field(default_factory=dict)
    per_day: dict[str, PositiveAmount] = Field(default_factory=dict)
    per_transaction_usd: PositiveAmount | None = None
    per_day_usd: PositiveAmount | None = None
    not_before: datetime
    expires_at: datetime


class SimulationResult(_Value):
    """What a chain simulation of the unsigned transaction showed.

    ``balance_changes`` maps asset symbol to the change of the agent's own balance
    (negative is an outflow); ``fee`` is paid in the chain's native coin.
    """

    chain: Name
    digest: bytes = Field(min_length=32, max_length=32)
    success: bool
    error: str | None = None
    balance_changes: dict[str, Decimal] = Field(default_factory=dict)
    fee: NonNegativeAmount = Decimal(0)


class SpendHistory(Protocol):
    """Read-only view of authorized spending, for limits and anomaly checks.

    Totals include reservations of actions being evaluated right now, this one too.
    """

    def window_total(
        self, agent: str | None, asset: str, now: datetime, length: timedelta
    ) -> Decimal:
        """Units of `asset` reserved or spent within `length` before `now` (None: all)."""
        ...

    def window_total_usd(self, agent: str | None, now: datetime, length: timedelta) -> Decimal:
        """USD value reserved or spent within `length` before `now` (None: all agents)."""
        ...

    def recent_amounts(self, agent: str, asset: str, count: int) -> list[Decimal]:
        """The last `count` settled amounts of `asset` sent by `agent`, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """Everything a policy may consult about the agent and its plan."""

    agent: AgentConfig
    deployment: Deployment
    plan_id: str
    evidence: ConfidenceEvidence | None
    clock: Clock
    prices: PriceSource
    spend: SpendHistory
    claims: AuthorityClaims | None = None
    plan_actions: tuple[ProposedAction, ...] = ()
    simulation: SimulationResult | None = None


AddressResolver = Callable[[str, str], str | None]
"""(agent name, chain name) -> that agent's address on the chain, for agent counterparties."""


@dataclass(slots=True)
class PolicyEnv:
    """What the engine gives a policy when it attaches it to an agent.

    Built-in policies keep their hot state in memory and write it through the store;
    user policies usually need nothing here.
    """

    deployment: Deployment
    agent: AgentConfig
    clock: Clock
    prices: PriceSource
    ledger: SpendLedger
    store: PolicyStore | None = None
    resolve_agent_address: AddressResolver | None = None
    resolve_peer_address: AddressResolver | None = None
    """(address-book name of another operator's agent, chain) -> the address its verified
    card lists; raises if the card did not verify."""
    _reloaders: list[Callable[[], None]] = field(default_factory=list)

    def persist(self, statement: Any, params: dict[str, Any], *, always: bool = False) -> None:
        """Write through: the row is committed before the engine's answer is returned.

        Unless `always`, the write is kept only if the action ends up authorized.
        """
        if self.store is not None:
            self.store.stage(statement, params, always=always)

    def on_control_change(self, reload: Callable[[], None]) -> None:
        """Call `reload` when the CLI changed control state (halt, reset, approvals)."""
        self._reloaders.append(reload)

    def reload(self) -> None:
        """Run every registered reload; called by the engine."""
        for reload in self._reloaders:
            reload()


class Policy(ABC):
    """One rule every action of an agent must pass.

    Subclasses set ``Params`` to a frozen pydantic model of their YAML parameters and
    take an instance of it in ``__init__``. The hooks are no-ops by default.
    """

    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @property
    def name(self) -> str:
        """Name used in reasons and logs."""
        return type(self).__name__

    @classmethod
    def problems(
        cls, params: BaseModel, deployment: Deployment, agent: AgentConfig
    ) -> Sequence[str]:
        """Deployment-level problems with `params` (e.g. unknown names); none by default."""
        return ()

    def attach(self, env: PolicyEnv) -> None:
        """Bind to the agent and its state; called once before the first evaluation."""
        return None  # a documented no-op hook

    @abstractmethod
    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Allow, deny (with a reason) or ask for approval of `action`."""

    def screen(self, intent: Intent, ctx: PolicyContext) -> str | None:
        """Why this policy would deny any action doing `intent` now, or None if it might
        allow one. It reads and changes nothing: it only spares the model choices that
        can only be refused, and :meth:`evaluate` still judges whatever is planned. So
        answer only what is certain from the intent alone (None by default)."""
        return None

    async def on_plan(self, ctx: PolicyContext) -> None:
        """A plan was made (possibly with no actions); `ctx.evidence` is its confidence."""
        return None  # a documented no-op hook

    async def on_declined(self, action: ProposedAction, ctx: PolicyContext) -> None:
        """This policy allowed `action` but another one did not: undo what it reserved."""
        return None  # a documented no-op hook

    async def on_executed(self, action: ProposedAction, ctx: PolicyContext) -> None:
        """The authorized transaction was executed successfully."""
        return None  # a documented no-op hook

    async def on_failed(self, action: ProposedAction, ctx: PolicyContext, reason: str) -> None:
        """The authorized transaction failed or was never sent."""
        return None  # a documented no-op hook

    async def on_price_failure(
        self, action: ProposedAction, ctx: PolicyContext, reason: str
    ) -> None:
        """`action` was denied because a USD figure had no fresh, agreed price."""
        return None  # a documented no-op hook


def as_timedelta(seconds: Decimal) -> timedelta:
    """A :data:`config.types.Duration` (Decimal seconds) as an exact timedelta."""
    return timedelta(microseconds=int(seconds * 1_000_000))
