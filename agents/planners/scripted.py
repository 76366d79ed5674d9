"""Scripted planner: plans written in YAML, one per tick, for tests and rule-based agents.

Every scripted plan is checked against the agent when the planner is built, so a typo in
the script is a configuration error at start-up, not an empty plan at some later tick.
"""

from __future__ import annotations

from decimal import Decimal

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
    agent whose planner it is, so a mistyped action key shows before the daemon runs."""
    problems = []
    for position, planner in enumerate(deployment.planners):
        if not isinstance(planner, ScriptedPlannerConfig):
            continue
        for agent in (a for a in deployment.agents if a.planner == planner.name):
            for index, data in enumerate(planner.plans):
                try:
                    validate_plan(data, deployment, agent.name)
                except InvalidPlan as exc:
                    problems.append(
                        f"planners[{position}].plans[{index}]: not a valid plan for agent "
                        f"{agent.name!r}: {exc}"
                    )
    return problems
