"""The plan a planner returns: typed actions over address-book names, never addresses.

A :class:`Plan` is checked twice. Its pydantic model fixes the shape (a discriminated
union of the registered action kinds, positive decimal amounts, confidence in [0, 1]);
:func:`check_plan` then checks it against one agent of one deployment: every chain, asset
and counterparty must be a name the agent may use, and no amount may carry more decimal
places than its asset has. :func:`plan_schema` gives the model the same constraints as a
JSON schema generated from the same models and narrowed to the agent (enums of names,
pattern-constrained decimal strings), so a schema-constrained decoder cannot even spell
an address. Each kind owns its part of all three (``agents/actions/``).

Confidence is never a bare number: planners return
:class:`policies.actions.ConfidenceEvidence`, which carries what the planner observed and
derives the score the circuit breaker uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BeforeValidator, Field, ValidationError

from agents.actions import KINDS, kind_of
from agents.actions.base import AgentNames, PlanChecker, PlanModel, no_float, object_schema
from agents.tasks import Task
from config.errors import PlannerError
from config.models import Deployment
from config.types import plain_amount
from policies.actions import ConfidenceEvidence

MAX_ACTIONS = 4
MAX_RATIONALE = 200

if TYPE_CHECKING:
    # The union is made at run time from the registry; each kind's module is typed on
    # its own model, and code that needs a field narrows with isinstance.
    Action = Any
else:
    Action = Annotated[
        Union[tuple(kind.model for kind in KINDS.values())],  # noqa: UP007 - built at run time
        Field(discriminator="kind"),
    ]

Confidence = Annotated[Decimal, BeforeValidator(no_float), Field(ge=0, le=1)]


class InvalidPlan(PlannerError):
    """A plan does not fit the schema or the agent's names; ``problems`` lists why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Plan(PlanModel):
    """What the agent intends to do this tick; raw model text never goes further."""

    # The rationale comes first so a small model reasons before it commits to actions
    # (the schema's property order is the fields' order).
    rationale: str = Field(default="", max_length=MAX_RATIONALE)
    actions: tuple[Action, ...] = Field(default=(), max_length=MAX_ACTIONS)
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


CONFIDENCE_PATTERN = "^(0([.][0-9]{1,4})?|1([.]0{1,4})?)$"


def plan_schema(
    deployment: Deployment, agent_name: str, tasks: Sequence[Task] | None = None
) -> dict[str, Any]:
    """The JSON schema the model must follow for `agent_name`'s plans.

    Generated from :class:`Plan` and each registered kind's model, narrowed to the agent:
    every leg is one variant per (chain, asset) the agent may use, with the chain and
    asset as constants and an amount pattern for that asset's decimals; payments name
    only counterparties that can be paid on that chain. So a schema-following reply
    cannot pair an asset with the wrong chain, over-state precision, or name an address.
    Only the kinds the agent may plan are in it, and a ``pay_invoice`` only names the
    invoices of `tasks` (the observation's) the agent could pay.
    """
    names = AgentNames(deployment, agent_name, tasks)
    variants = [
        variant
        for kind in KINDS.values()
        if names.may_plan(kind.name)
        for variant in kind.schema(names)
    ]
    generated = Plan.model_json_schema()["properties"]
    actions = {"type": "array", "items": {"anyOf": variants}, "maxItems": MAX_ACTIONS}
    schema = object_schema(
        Plan,
        {
            "rationale": {
                "type": generated["rationale"]["type"],
                "maxLength": generated["rationale"]["maxLength"],
            },
            "actions": actions if variants else {"type": "array", "maxItems": 0},
            "confidence": {"type": "string", "pattern": CONFIDENCE_PATTERN},
        },
    )
    return {"title": f"Plan for {agent_name}", **schema}


def admits_actions(schema: dict[str, Any]) -> bool:
    """Whether a :func:`plan_schema` lets the plan hold any action at all."""
    return "items" in schema["properties"]["actions"]


NOTHING_TO_CHOOSE = ConfidenceEvidence(
    self_reported=Decimal(1), sample_agreement=Decimal(1), samples=2, mean_token_logprob=Decimal(0)
)
"""Evidence for a plan no model was asked for because only the empty plan fits (e.g. an
agent that may only pay invoices, with none open): a forced choice is a certain one, and
counting it as a low-confidence plan would open the breaker of an agent with nothing to
do."""


def parse_plan(
    text: str, deployment: Deployment, agent_name: str, tasks: Sequence[Task] | None = None
) -> Plan:
    """Parse a model's JSON reply into a checked :class:`Plan`; :class:`InvalidPlan` if not."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        excerpt = text[:80] + ("..." if len(text) > 80 else "")
        raise InvalidPlan(
            [f"reply is not JSON ({exc.msg} at character {exc.pos}): {excerpt!r}"]
        ) from exc
    return validate_plan(data, deployment, agent_name, tasks)


def validate_plan(
    data: Any, deployment: Deployment, agent_name: str, tasks: Sequence[Task] | None = None
) -> Plan:
    """Validate already-decoded plan data (e.g. from YAML) for `agent_name`, against the
    observation's `tasks` (None: not known yet, see :class:`AgentNames`).

    Each action comes back as its kind's simplest equivalent: a ``pay_many`` with a
    single leg is the equivalent ``transfer``, since one payment is all-or-nothing by
    itself and needs no escrow; a repeat of an idempotent action (the same invoice
    twice) is dropped.
    """
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise InvalidPlan([_describe(error) for error in exc.errors()]) from exc
    check_plan(plan, deployment, agent_name, tasks)
    simplest = [kind_of(action).simplest(action) for action in plan.actions]
    kept = [
        action
        for index, action in enumerate(simplest)
        if not (kind_of(action).idempotent and action in simplest[:index])
    ]
    return plan.model_copy(update={"actions": tuple(kept)})


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "plan"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message} (got {error.get('input')!r})"[:300]


def check_plan(
    plan: Plan, deployment: Deployment, agent_name: str, tasks: Sequence[Task] | None = None
) -> None:
    """Raise :class:`InvalidPlan` if `plan` names anything `agent_name` may not use."""
    names = AgentNames(deployment, agent_name, tasks)
    checker = PlanChecker(names)
    for index, action in enumerate(plan.actions):
        kind = kind_of(action)
        if not names.may_plan(kind.name):
            checker.problems.append(
                f"actions.{index}.kind: {agent_name} may not plan {kind.name}; its actions "
                f"are {', '.join(sorted(names.kinds))}"
            )
            continue
        kind.check(action, f"actions.{index}", checker)
    if checker.problems:
        raise InvalidPlan(checker.problems)
