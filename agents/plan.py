"""The plan a planner returns: typed actions over address-book names, never addresses.

A :class:`Plan` is checked twice. Its pydantic model fixes the shape (a discriminated
union of actions, positive decimal amounts, confidence in [0, 1]); :func:`check_plan`
then checks it against one agent of one deployment: every chain, asset and counterparty
must be a name the agent may use, and no amount may carry more decimal places than its
asset has. :func:`plan_schema` gives the model the same constraints as a JSON schema
(enums of names, pattern-constrained decimal strings), so a schema-constrained decoder
cannot even spell an address.

Confidence is never a bare number: planners return
:class:`policies.actions.ConfidenceEvidence`, which carries what the planner observed and
derives the score the circuit breaker uses.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from config.errors import PlannerError
from config.models import AgentConfig, Deployment
from config.types import Name, PositiveAmount, plain_amount
from policies.actions import ConfidenceEvidence

MAX_ACTIONS = 4
MAX_LEGS = 4
MAX_RATIONALE = 200
MAX_WHOLE_DIGITS = 10
"""Whole digits of an amount: 10 plus 18 decimals fit Decimal's default 28-digit context,
so arithmetic on any valid amount is exact."""


class InvalidPlan(PlannerError):
    """A plan does not fit the schema or the agent's names; ``problems`` lists why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_float(value: Any) -> Any:
    # A float has already lost precision; demand the decimal string the schema asks for.
    if isinstance(value, float):
        raise ValueError(f"{value!r} is a JSON number; write amounts as strings such as '0.5'")
    return value


Amount = Annotated[
    PositiveAmount,
    BeforeValidator(_no_float),
    # "100.000000000000000000" from a model means 100: every message and record says so.
    AfterValidator(lambda amount: Decimal(plain_amount(amount))),
]
Confidence = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0, le=1)]
Symbol = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9.]{0,15}$")]


class Leg(_Model):
    """An amount of one asset on one chain."""

    chain: Name
    asset: Symbol
    amount: Amount


class Payment(Leg):
    """A leg paid to a named counterparty."""

    counterparty: Name


class Transfer(Payment):
    """Pay `amount` of `asset` on `chain` to the address-book entry `counterparty`."""

    kind: Literal["transfer"]


class Swap(_Model):
    """Give one leg to `counterparty` and take another from it, atomically (HTLC)."""

    kind: Literal["swap"]
    counterparty: Name
    give: Leg
    take: Leg


class PayMany(_Model):
    """Several payments, possibly on several chains, made all-or-nothing."""

    kind: Literal["pay_many"]
    legs: tuple[Payment, ...] = Field(min_length=1, max_length=MAX_LEGS)


Action = Annotated[Transfer | Swap | PayMany, Field(discriminator="kind")]


class Plan(_Model):
    """What the agent intends to do this tick; raw model text never goes further."""

    actions: tuple[Action, ...] = Field(default=(), max_length=MAX_ACTIONS)
    rationale: str = Field(default="", max_length=MAX_RATIONALE)
    confidence: Confidence = Decimal(0)

    @classmethod
    def empty(cls, rationale: str) -> Plan:
        """A plan that does nothing and claims no confidence."""
        return cls(actions=(), rationale=rationale[:MAX_RATIONALE], confidence=Decimal(0))

    def actions_key(self) -> str:
        """Canonical JSON of the actions alone, to compare samples for agreement."""
        actions = [action.model_dump(mode="json") for action in self.actions]
        return json.dumps(_normalise(actions), sort_keys=True, separators=(",", ":"))


def _normalise(value: Any) -> Any:
    """Amounts as normalised decimal strings, so '0.50' and '0.5' agree."""
    if isinstance(value, dict):
        return {
            key: _canonical_amount(item) if key == "amount" else _normalise(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    return value


def _canonical_amount(value: str) -> str:
    return plain_amount(Decimal(value))


def failed_evidence(samples: int, repairs: int) -> ConfidenceEvidence:
    """Evidence for a planner that produced no valid plan: it scores zero."""
    return ConfidenceEvidence(
        self_reported=Decimal(0),
        sample_agreement=Decimal(0),
        samples=max(1, samples),
        repair_count=repairs,
    )


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


CONFIDENCE_PATTERN = "^(0([.][0-9]{1,4})?|1([.]0{1,4})?)$"


def plan_schema(deployment: Deployment, agent_name: str) -> dict[str, Any]:
    """The JSON schema the model must follow for `agent_name`'s plans.

    Every leg is one variant per (chain, asset) the agent may use, with the chain and
    asset as constants and an amount pattern for that asset's decimals; payments name
    only counterparties that can be paid on that chain. So a schema-following reply
    cannot pair an asset with the wrong chain, over-state precision, or name an address.
    """
    agent = deployment.agent(agent_name)
    parties = allowed_counterparties(deployment, agent)
    legs, payments = [], []
    for (chain, symbol), decimals in allowed_assets(deployment, agent).items():
        leg = {
            "chain": {"const": chain},
            "asset": {"const": symbol},
            "amount": {"type": "string", "pattern": amount_pattern(decimals)},
        }
        legs.append(_object(leg))
        payable = [name for name in parties if _can_receive(deployment, name, chain)]
        if payable:
            payments.append({**leg, "counterparty": {"enum": payable}})
    actions = [_object({"kind": {"const": "transfer"}, **payment}) for payment in payments]
    if payments:
        actions += [
            _object(
                {
                    "kind": {"const": "swap"},
                    "counterparty": {"enum": parties},
                    "give": {"anyOf": legs},
                    "take": {"anyOf": legs},
                }
            ),
            _object(
                {
                    "kind": {"const": "pay_many"},
                    "legs": {
                        "type": "array",
                        "items": {"anyOf": [_object(p) for p in payments]},
                        "minItems": 1,
                        "maxItems": MAX_LEGS,
                    },
                }
            ),
        ]
    # The rationale comes first so a small model reasons before it commits to actions.
    schema = _object(
        {
            "rationale": {"type": "string", "maxLength": MAX_RATIONALE},
            "actions": {"type": "array", "items": {"anyOf": actions}, "maxItems": MAX_ACTIONS}
            if actions
            else {"type": "array", "maxItems": 0},
            "confidence": {"type": "string", "pattern": CONFIDENCE_PATTERN},
        }
    )
    return {"title": f"Plan for {agent_name}", **schema}


def _can_receive(deployment: Deployment, party_name: str, chain: str) -> bool:
    party = next(p for p in deployment.address_book if p.name == party_name)
    return party.agent is not None or chain in party.addresses


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def parse_plan(text: str, deployment: Deployment, agent_name: str) -> Plan:
    """Parse a model's JSON reply into a checked :class:`Plan`; :class:`InvalidPlan` if not."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        excerpt = text[:80] + ("..." if len(text) > 80 else "")
        raise InvalidPlan(
            [f"reply is not JSON ({exc.msg} at character {exc.pos}): {excerpt!r}"]
        ) from exc
    return validate_plan(data, deployment, agent_name)


def validate_plan(data: Any, deployment: Deployment, agent_name: str) -> Plan:
    """Validate already-decoded plan data (e.g. from YAML) for `agent_name`.

    A ``pay_many`` with a single leg comes back as the equivalent ``transfer``: one
    payment is all-or-nothing by itself and needs no escrow.
    """
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise InvalidPlan([_describe(error) for error in exc.errors()]) from exc
    check_plan(plan, deployment, agent_name)
    return plan.model_copy(update={"actions": tuple(_simplest(a) for a in plan.actions)})


def _simplest(action: Transfer | Swap | PayMany) -> Transfer | Swap | PayMany:
    if isinstance(action, PayMany) and len(action.legs) == 1:
        return Transfer(kind="transfer", **action.legs[0].model_dump())
    return action


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "plan"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message} (got {error.get('input')!r})"[:300]


def check_plan(plan: Plan, deployment: Deployment, agent_name: str) -> None:
    """Raise :class:`InvalidPlan` if `plan` names anything `agent_name` may not use."""
    agent = deployment.agent(agent_name)
    checker = _Checker(deployment, agent)
    for index, action in enumerate(plan.actions):
        checker.action(f"actions.{index}", action)
    if checker.problems:
        raise InvalidPlan(checker.problems)


class _Checker:
    """Collects every problem of a plan, so one repair prompt can name them all."""

    def __init__(self, deployment: Deployment, agent: AgentConfig) -> None:
        self.deployment = deployment
        self.chains = allowed_chains(deployment, agent)
        self.assets = allowed_assets(deployment, agent)
        self.parties = allowed_counterparties(deployment, agent)
        self.problems: list[str] = []

    def action(self, where: str, action: Transfer | Swap | PayMany) -> None:
        if isinstance(action, Transfer):
            self.payment(where, action)
        elif isinstance(action, Swap):
            self.counterparty(f"{where}.counterparty", action.counterparty, action.give.chain)
            self.leg(f"{where}.give", action.give)
            self.leg(f"{where}.take", action.take)
            if action.give.chain == action.take.chain and action.give.asset == action.take.asset:
                self.problems.append(f"{where}: give and take are the same asset on one chain")
        else:
            for index, leg in enumerate(action.legs):
                self.payment(f"{where}.legs.{index}", leg)

    def payment(self, where: str, payment: Payment) -> None:
        self.leg(where, payment)
        self.counterparty(f"{where}.counterparty", payment.counterparty, payment.chain)

    def leg(self, where: str, leg: Leg) -> None:
        if leg.chain not in self.chains:
            self.problems.append(_unknown(f"{where}.chain", "chain", leg.chain, self.chains))
            return
        decimals = self.assets.get((leg.chain, leg.asset))
        if decimals is None:
            symbols = [symbol for chain, symbol in self.assets if chain == leg.chain]
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
        if name not in self.parties:
            self.problems.append(_unknown(where, "counterparty", name, self.parties))
            return
        party = next(p for p in self.deployment.address_book if p.name == name)
        if chain in self.chains and not _can_receive(self.deployment, name, chain):
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
