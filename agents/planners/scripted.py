"""Scripted planner: plans written in YAML, one per tick, for tests and rule-based agents.

Every scripted plan is checked against the agent when the planner is built, so a typo in
the script is a configuration error at start-up, not an empty plan at some later tick.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from agents.plan import InvalidPlan, Plan, validate_plan
from agents.planners.base import Planner
from agents.planners.types import Observation, PlanResult
from config.errors import ConfigError
from config.models import Deployment
from config.models import ScriptedPlanner as ScriptedPlannerConfig
from policies.actions import ConfidenceEvidence


class ScriptedPlanner(Planner):
    """Returns the configured plans in order; with ``repeat`` it starts over, otherwise
    it returns empty plans once the script is used up.

    A script is written by the operator, not sampled from a model: running it again
    gives the same plan, token for token. Its evidence says exactly that (agreement 1
    over repeated runs, token probability 1), so its score is 0.8 plus a fifth of the
    confidence the script states; a script that states low confidence still trips a
    breaker.
    """

    def __init__(
        self, config: ScriptedPlannerConfig, deployment: Deployment, agent_name: str
    ) -> None:
        self.config = config
        self.agent_name = agent_name
        self.plans = [
            _checked(config.name, index, data, deployment, agent_name)
            for index, data in enumerate(config.plans)
        ]
        self.position = 0

    async def plan(self, observation: Observation) -> PlanResult:
        """The next plan of the script."""
        if self.position >= len(self.plans) and self.config.repeat and self.plans:
            self.position = 0
        if self.position >= len(self.plans):
            plan = Plan.empty("the script has no more plans")
        else:
            plan = self.plans[self.position]
            self.position += 1
        evidence = ConfidenceEvidence(
            self_reported=plan.confidence,
            sample_agreement=Decimal(1),
            samples=2,
            mean_token_logprob=Decimal(0),
        )
        return PlanResult(plan=plan, evidence=evidence)


def _checked(
    planner: str, index: int, data: dict[str, object], deployment: Deployment, agent: str
) -> Plan:
    try:
        return validate_plan(data, deployment, agent)
    except InvalidPlan as exc:
        raise ConfigError(
            f"planner {planner!r} plan {index + 1} is not valid for agent {agent!r}: {exc}; "
            "fix the plan in the deployment file"
        ) from exc


def validate_scripted_plans(deployment: Deployment) -> list[str]:
    """`config validate`'s check of every scripted plan against the plan model of each
    agent whose planner it is, so a mistyped action key shows before the daemon runs.
    Each problem starts with its field path in the file (``planners[1].plans[0].
    actions[0].amount: ...``), so the CLI can give its line."""
    problems = []
    for position, planner in enumerate(deployment.planners):
        if not isinstance(planner, ScriptedPlannerConfig):
            continue
        for agent in (a for a in deployment.agents if a.planner == planner.name):
            for index, data in enumerate(planner.plans):
                try:
                    validate_plan(data, deployment, agent.name)
                except InvalidPlan as exc:
                    at = f"planners[{position}].plans[{index}]"
                    problems += [_in_file(at, data, p, agent.name) for p in exc.problems]
    return problems


def _in_file(at: str, data: Any, problem: str, agent: str) -> str:
    """A plan problem (``actions.0.amount: ...``) with its path in the deployment file."""
    inner, separator, message = problem.partition(": ")
    if not (separator and re.fullmatch(r"[\w.]+", inner)):
        return f"{at}: {problem} (a plan for agent {agent!r})"
    parts = _parts_in(data, inner.split("."))
    at += "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in parts)
    if message.startswith("Extra inputs are not permitted"):
        message = f"unknown key {parts[-1]!r}"
    return f"{at}: {message} (a plan for agent {agent!r})"


def _parts_in(data: Any, parts: list[str]) -> list[str]:
    """`parts` without the names pydantic adds that the file does not have (the tag of a
    discriminated union, ``swap`` in ``actions.0.swap.give``); the last part stays, as it
    may name a missing key."""
    kept, here = [], data
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        if isinstance(here, list) and part.isdigit() and int(part) < len(here):
            here = here[int(part)]
        elif isinstance(here, dict) and part in here:
            here = here[part]
        elif not last:
            continue
        kept.append(part)
    return kept
