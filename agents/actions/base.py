"""What every action kind is made of: the :class:`Kind` interface, the plan primitives
the kinds share (legs and payments over address-book names), the agent's narrowed names,
the checker, the generated schema fragments and what an executed action reports.

A kind's JSON-schema fragment is generated from its pydantic model
(:func:`object_schema`): the model fixes which properties exist, which are constants
(the ``kind`` discriminator), the array bounds and that nothing else may appear; the
agent's deployment then narrows each free property to the names and precision that
agent may use (:class:`AgentNames`), so a schema-constrained decoder cannot even spell
an address.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from agents.tasks import Task
from config.models import AgentConfig, Deployment
from config.types import Name, PositiveAmount, plain_amount
from policies.actions import ActionKind as PolicyKind
from policies.actions import ConfidenceEvidence, ProposedAction, Receives

if TYPE_CHECKING:
    from agents.payments import PaymentExecutor
    from agents.resolver import Resolver

MAX_WHOLE_DIGITS = 10
"""Whole digits of an amount: 10 plus 18 decimals fit Decimal's default 28-digit context,
so arithmetic on any valid amount is exact."""

ResultState = Literal["executed", "started", "pending", "failed", "denied", "queued", "error"]
"""`started`: an all-or-nothing plan is under way; its end reaches the next observations.
`pending`: signed and sent, but whether it landed is not known yet (the endpoint went away
or the wait ran out); the journal follows it and its spend stays counted."""


@dataclass(frozen=True)
class ActionResult:
    """What happened to one planned action, for the audit log and the next observation."""

    state: ResultState
    summary: str
    action: ProposedAction | None = None
    policy: str | None = None
    tx_id: str | None = None
    approval_id: str | None = None


class PlanModel(BaseModel):
    """Base of every plan model: unknown fields are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def no_float(value: Any) -> Any:
    """Refuse a JSON number where a decimal string belongs."""
    # A float has already lost precision; demand the decimal string the schema asks for.
    if isinstance(value, float):
        raise ValueError(f"{value!r} is a JSON number; write amounts as strings such as '0.5'")
    return value


Amount = Annotated[
    PositiveAmount,
    BeforeValidator(no_float),
    # "100.000000000000000000" from a model means 100: every message and record says so.
    AfterValidator(lambda amount: Decimal(plain_amount(amount))),
]
Symbol = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9.]{0,15}$")]


class Leg(PlanModel):
    """An amount of one asset on one chain."""

    chain: Name
    asset: Symbol
    amount: Amount


class Payment(Leg):
    """A leg paid to a named counterparty."""

    counterparty: Name

    def describe(self) -> str:
        """``0.05 ETH on arb to acme``."""
        return f"{plain_amount(self.amount)} {self.asset} on {self.chain} to {self.counterparty}"


# -- the agent's names -------------------------------------------------------------------


def allowed_chains(deployment: Deployment, agent: AgentConfig) -> list[str]:
    """Chains the agent may act on, in deployment order."""
    return [chain.name for chain in deployment.chains if chain.name in agent.chains]


def allowed_assets(deployment: Deployment, agent: AgentConfig) -> dict[tuple[str, str], int]:
    """(chain, symbol) -> decimals for every asset the agent may move."""
    return {
        (asset.chain, asset.symbol): asset.decimals
        for asset in deployment.assets
        if asset.chain in agent.chains and (not agent.assets or asset.symbol in agent.assets)
    }


def allowed_counterparties(deployment: Deployment, agent: AgentConfig) -> list[str]:
    """Address-book names the agent may deal with; never the agent itself."""
    return [
        party.name
        for party in deployment.address_book
        if (not agent.counterparties or party.name in agent.counterparties)
        and party.agent != agent.name
    ]


def amount_pattern(max_decimals: int) -> str:
    """A regex for a non-negative decimal string with at most `max_decimals` places.

    Written with ``[.]`` rather than an escaped dot because llama.cpp's schema-to-grammar
    converter rejects the escape.
    """
    whole = f"(0|[1-9][0-9]{{0,{MAX_WHOLE_DIGITS - 1}}})"
    if max_decimals == 0:
        return f"^{whole}$"
    return f"^{whole}([.][0-9]{{1,{max_decimals}}})?$"


class AgentNames:
    """What one agent of one deployment may name at one decision: the action kinds it may
    plan, chains, assets with their decimals, counterparties and the tasks it sees, plus
    the schema variants of a leg and a payment over them.

    `tasks` are the observation's; None means they are not known (a scripted plan checked
    when the deployment loads), and a plan naming a task is then checked for shape only.
    """

    def __init__(
        self, deployment: Deployment, agent_name: str, tasks: Sequence[Task] | None = None
    ) -> None:
        agent = deployment.agent(agent_name)
        self.deployment = deployment
        self.kinds = frozenset(agent.actions)
        self.chains = allowed_chains(deployment, agent)
        self.assets = allowed_assets(deployment, agent)
        self.parties = allowed_counterparties(deployment, agent)
        self.tasks: dict[str, Task] | None = None
        if tasks is not None:
            self.tasks = {}
            for task in tasks:
                self.tasks.setdefault(task.id, task)  # the observer keeps ids unique

    def may_plan(self, kind: str) -> bool:
        """Whether the agent's `actions:` list lets it plan `kind` (empty: every kind)."""
        return not self.kinds or kind in self.kinds

    def can_receive(self, party_name: str, chain: str) -> bool:
        """Whether the address-book entry has an address on `chain`: agents of this
        deployment have all; another operator's agent has what its verified card lists,
        which only the run knows (an unverified one gets nothing at execution)."""
        party = next(p for p in self.deployment.address_book if p.name == party_name)
        return party.agent is not None or party.remote or chain in party.addresses

    def leg_fields(self) -> list[dict[str, Any]]:
        """Per (chain, asset) the agent may use: the narrowed chain, asset and amount."""
        return [
            {
                "chain": {"const": chain},
                "asset": {"const": symbol},
                "amount": {"type": "string", "pattern": amount_pattern(decimals)},
            }
            for (chain, symbol), decimals in self.assets.items()
        ]

    def payment_fields(self) -> list[dict[str, Any]]:
        """Leg fields plus the counterparties that can be paid on that leg's chain."""
        fields = []
        for leg in self.leg_fields():
            chain = leg["chain"]["const"]
            payable = [name for name in self.parties if self.can_receive(name, chain)]
            if payable:
                fields.append({**leg, "counterparty": {"enum": payable}})
        return fields

    def legs(self) -> list[dict[str, Any]]:
        """Every leg variant, generated from :class:`Leg`."""
        return [object_schema(Leg, fields) for fields in self.leg_fields()]

    def payments(self) -> list[dict[str, Any]]:
        """Every payment variant, generated from :class:`Payment`."""
        return [object_schema(Payment, fields) for fields in self.payment_fields()]


# -- generated schema fragments ----------------------------------------------------------


def object_schema(model: type[BaseModel], narrowed: Mapping[str, Any]) -> dict[str, Any]:
    """`model`'s JSON schema as an object whose free properties are `narrowed`.

    The property names, the constants and ``additionalProperties`` come from pydantic's
    generated schema; every property is required (a model writes the whole object) and
    constants come first, so a decoder commits to the kind before its fields. A property
    the model has but `narrowed` lacks, or the reverse, is a programming error.
    """
    generated = model.model_json_schema()
    properties: dict[str, Any] = generated["properties"]
    free = {name for name, prop in properties.items() if "const" not in prop}
    if free != set(narrowed):
        raise ValueError(
            f"{model.__name__}: narrowed {sorted(narrowed)}, but its free fields are {sorted(free)}"
        )
    ordered = sorted(properties, key=lambda name: name in free)
    return {
        "type": "object",
        "properties": {
            name: narrowed[name] if name in free else {"const": properties[name]["const"]}
            for name in ordered
        },
        "required": ordered,
        "additionalProperties": generated.get("additionalProperties", True),
    }


def array_schema(
    model: type[BaseModel], field: str, variants: list[dict[str, Any]]
) -> dict[str, Any]:
    """The array property `field` of `model` with items any of `variants`, keeping the
    bounds the model declares; no variant means only the empty array fits."""
    generated = model.model_json_schema()["properties"][field]
    if not variants:
        return {"type": "array", "maxItems": 0}
    bounds = {key: generated[key] for key in ("minItems", "maxItems") if key in generated}
    return {"type": "array", "items": {"anyOf": variants}, **bounds}


# -- checks against the deployment --------------------------------------------------------


class PlanChecker:
    """Collects every problem of a plan, so one repair prompt can name them all."""

    def __init__(self, names: AgentNames) -> None:
        self.names = names
        self.problems: list[str] = []

    def payment(self, where: str, payment: Payment) -> None:
        """A leg to a counterparty that can be paid on the leg's chain."""
        self.leg(where, payment)
        self.counterparty(f"{where}.counterparty", payment.counterparty, payment.chain)

    def leg(self, where: str, leg: Leg) -> None:
        """A known chain, an asset the agent may move there, an amount it can carry."""
        names = self.names
        if leg.chain not in names.chains:
            self.problems.append(_unknown(f"{where}.chain", "chain", leg.chain, names.chains))
            return
        decimals = names.assets.get((leg.chain, leg.asset))
        if decimals is None:
            symbols = [symbol for chain, symbol in names.assets if chain == leg.chain]
            self.problems.append(
                _unknown(f"{where}.asset", f"asset on {leg.chain}", leg.asset, symbols)
            )
        elif leg.amount >= 10**MAX_WHOLE_DIGITS:
            self.problems.append(
                f"{where}.amount: {leg.amount} has more than {MAX_WHOLE_DIGITS} whole digits"
            )
        elif _places(leg.amount) > decimals:
            self.problems.append(
                f"{where}.amount: {leg.amount} has more than the {decimals} decimal places "
                f"{leg.asset} allows"
            )

    def counterparty(self, where: str, name: str, chain: str) -> None:
        """A counterparty the agent may deal with, with an address on `chain`."""
        names = self.names
        if name not in names.parties:
            self.problems.append(_unknown(where, "counterparty", name, names.parties))
            return
        party = next(p for p in names.deployment.address_book if p.name == name)
        if chain in names.chains and not names.can_receive(name, chain):
            self.problems.append(
                f"{where}: {name} has no address on {chain}; it has "
                f"{', '.join(sorted(party.addresses))}"
            )


def _unknown(where: str, kind: str, value: str, known: list[str]) -> str:
    options = ", ".join(known) if known else "none"
    return f"{where}: unknown {kind} {value!r}; use one of: {options}"


def _places(amount: Decimal) -> int:
    """Decimal places without trailing zeros; exact, unlike normalize(), which rounds to
    the context's 28 digits."""
    text = plain_amount(amount)
    return len(text.partition(".")[2])


# -- escrow locks -----------------------------------------------------------------------


@dataclass(frozen=True)
class EscrowLock:
    """What a plan says one escrow lock will be: checked against the leg the coordinator
    built, then proposed to the policies as a ``swap_leg``."""

    chain: str
    asset: str
    amount: Decimal
    base_units: int
    counterparty: str
    address: str
    evidence: ConfidenceEvidence
    token: str | None = None
    """The asset's token contract or mint; None for the native coin."""
    task: str | None = None
    """The task it settles (an accepted offer, `source/id`), for DuplicateGuard."""
    receives: Receives | None = None
    """A swap's lock: the counterparty's leg, what the agent gets back (for SwapRate)."""

    def propose(self, agent: str, plan_id: str, digest: bytes) -> ProposedAction:
        """The action the policies judge for the lock transaction with `digest`."""
        return ProposedAction(
            agent=agent,
            plan_id=plan_id,
            kind="swap_leg",
            chain=self.chain,
            asset=self.asset,
            amount=self.amount,
            amount_base_units=self.base_units,
            recipient=self.counterparty,
            recipient_address=self.address,
            digest=digest,
            task=self.task,
            receives=self.receives,
        )


def plan_lock(
    leg: Leg, counterparty: str, evidence: ConfidenceEvidence, resolver: Resolver
) -> EscrowLock:
    """The escrow lock paying `leg` to the address-book entry `counterparty`."""
    asset = resolver.asset(leg.chain, leg.asset)
    return EscrowLock(
        chain=leg.chain,
        asset=leg.asset,
        amount=leg.amount,
        base_units=resolver.base_units(leg.amount, asset),
        counterparty=counterparty,
        address=resolver.address(counterparty, leg.chain),
        evidence=evidence,
        token=asset.token,
    )


def check_named_task(
    task_id: str,
    where: str,
    checker: PlanChecker,
    what: str,
    why_not: Callable[[Task, AgentNames], str | None],
    *,
    listed_kind: str | None = None,
) -> None:
    """The shared check of an action naming a task by id (pay_invoice, accept_offer): the
    task must be open in this observation, and `why_not` must find nothing against it.
    `listed_kind` narrows the open ones the problem lists (None: every task)."""
    tasks = checker.names.tasks
    if tasks is None:  # a scripted plan, checked before any task is seen
        return
    task = tasks.get(task_id)
    if task is None:
        ids = [t.id for t in tasks.values() if listed_kind is None or t.kind == listed_kind]
        checker.problems.append(
            f"{where}.task: no open {what} {task_id!r}; open ones: {', '.join(ids) or 'none'}"
        )
        return
    reason = why_not(task, checker.names)
    if reason is not None:
        checker.problems.append(f"{where}.task: {reason}")


# -- the kind interface ---------------------------------------------------------------------


class EscrowHandler(Protocol):
    """Runs an all-or-nothing action through the HTLC coordinator (``AtomicDesk.handler``);
    `task` is the task it settles (an accepted offer), if any."""

    def __call__(
        self,
        action: PlanModel,
        plan_id: str,
        evidence: ConfidenceEvidence,
        *,
        task: str | None = None,
    ) -> Awaitable[ActionResult]: ...


@dataclass(frozen=True)
class Executors:
    """The execution strategies an agent has (one transaction, or an escrow plan), and
    the tasks of the observation the plan was made from, by id."""

    payments: PaymentExecutor
    escrow: EscrowHandler | None
    tasks: Mapping[str, Task] = field(default_factory=lambda: MappingProxyType({}))


async def through_escrow(
    action: PlanModel,
    plan_id: str,
    evidence: ConfidenceEvidence,
    executors: Executors,
    *,
    task: str | None = None,
) -> ActionResult:
    """The escrow strategy: the coordinator runs `action` all-or-nothing; the lock it
    gives names `task` (the task it settles) to the policies."""
    if executors.escrow is None:
        kind = getattr(action, "kind", type(action).__name__)
        return ActionResult(
            "error",
            f"{kind} needs the cross-chain coordinator, which this runtime was started without",
        )
    return await executors.escrow(action, plan_id, evidence, task=task)


ModelT = TypeVar("ModelT", bound=PlanModel)


class Kind(ABC, Generic[ModelT]):
    """One action kind: its plan model, schema fragment, prompt line, checks and how it
    executes. Registered once in ``agents/actions/__init__.py``."""

    name: ClassVar[str]
    """The plan's ``kind`` literal."""
    model: ClassVar[type[PlanModel]]
    proposes: ClassVar[tuple[PolicyKind, ...]]
    """The kinds of :class:`~policies.actions.ProposedAction` its execution shows the
    policies (their vocabulary, ``policies.actions.ActionKind``)."""
    prompt: ClassVar[str]
    """Its line under "Action shapes" in the planner's rules."""
    idempotent: ClassVar[bool] = False
    """Naming the same action twice in a plan means doing it once (paying invoice
    inv-17 twice is paying it); a plan keeps the first of such repeats."""

    @abstractmethod
    def schema(self, names: AgentNames) -> list[dict[str, Any]]:
        """Its schema variants for an agent's names; none if it can do nothing."""

    @abstractmethod
    def check(self, action: ModelT, where: str, checker: PlanChecker) -> None:
        """Add to `checker` every name or amount of `action` the agent may not use."""

    @abstractmethod
    def describe(self, action: ModelT) -> str:
        """One line for people (``audit show``): what the action does."""

    def simplest(self, action: ModelT) -> PlanModel:
        """The simplest equivalent action (itself unless a simpler kind does the same)."""
        return action

    @abstractmethod
    async def execute(
        self, action: ModelT, plan_id: str, evidence: ConfidenceEvidence, executors: Executors
    ) -> ActionResult:
        """Run `action` with its execution strategy; every signature through the gate."""
