"""k samples, one repair each, majority vote, and the confidence evidence.

A reply that fails validation is re-asked once with the validation errors; a sample that
is still invalid counts as a dissenting vote. If no sample yields a valid plan the result
is an empty plan whose evidence scores near zero, which the circuit breaker counts; bad
model output never raises.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agents.plan import (
    NOTHING_TO_CHOOSE,
    InvalidPlan,
    Plan,
    admits_actions,
    failed_evidence,
    parse_plan,
    plan_schema,
)
from agents.planners._prompt import build_messages, prompt_digest
from agents.planners._repair import repair_messages
from agents.planners.types import ChatMessage, Completion, Observation, PlanResult
from agents.tasks import Task
from policies.actions import ConfidenceEvidence

if TYPE_CHECKING:
    from agents.planners.base import ModelPlanner


@dataclass
class _Sample:
    plan: Plan | None
    completion: Completion
    completions: list[Completion] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def repairs(self) -> int:
        return len(self.completions) - 1


async def sample_plan(planner: ModelPlanner, observation: Observation) -> PlanResult:
    """The majority plan of `planner.samples` replies, with evidence."""
    # The tasks the agent cannot act on now were set aside before (agents/screen.py).
    offered = observation.tasks
    schema = plan_schema(planner.deployment, planner.agent_name, offered)
    messages = build_messages(planner.deployment, observation)
    if not admits_actions(schema):
        return PlanResult(
            plan=Plan.empty("only the empty plan fits now (e.g. no open invoice to pay)"),
            evidence=NOTHING_TO_CHOOSE,
            prompt_digest=prompt_digest(messages, schema),
        )
    async with planner.decision():  # embedded: one locked run, one prefill
        samples = await asyncio.gather(
            *(_sample(planner, messages, schema, offered) for _ in range(planner.samples))
        )
    completions = [c for sample in samples for c in sample.completions]
    chosen, evidence = _vote(samples)
    return PlanResult(
        plan=chosen.plan if chosen and chosen.plan else _empty(samples),
        evidence=evidence,
        raw_outputs=tuple(c.text for c in completions),
        prompt_digest=prompt_digest(messages, schema),
        errors=tuple(error for sample in samples for error in sample.errors),
        model_calls=len(completions),
        prompt_tokens=sum(c.prompt_tokens for c in completions),
        completion_tokens=sum(c.completion_tokens for c in completions),
        prefill_tokens=_prefill(completions),
    )


def _prefill(completions: list[Completion]) -> int | None:
    counts = [c.prefill_tokens for c in completions]
    if not counts or None in counts:
        return None
    return sum(c for c in counts if c is not None)


async def _sample(
    planner: ModelPlanner,
    messages: list[ChatMessage],
    schema: dict[str, Any],
    tasks: Sequence[Task],
) -> _Sample:
    first = await planner.complete(messages, schema)
    try:
        plan = parse_plan(first.text, planner.deployment, planner.agent_name, tasks)
        return _Sample(plan, first, [first])
    except InvalidPlan as exc:
        problems = exc.problems
    second = await planner.complete(repair_messages(messages, first.text, problems), schema)
    try:
        plan = parse_plan(second.text, planner.deployment, planner.agent_name, tasks)
        return _Sample(plan, second, [first, second], list(problems))
    except InvalidPlan as exc:
        return _Sample(None, second, [first, second], [*problems, *exc.problems])


def _vote(samples: list[_Sample]) -> tuple[_Sample | None, ConfidenceEvidence]:
    repairs = sum(sample.repairs for sample in samples)
    valid = [sample for sample in samples if sample.plan is not None]
    if not valid:
        return None, failed_evidence(len(samples), repairs)
    votes = Counter(sample.plan.actions_key() for sample in valid if sample.plan)
    winner = max(votes, key=lambda key: votes[key])  # ties: the earliest sample wins
    chosen = next(s for s in valid if s.plan and s.plan.actions_key() == winner)
    assert chosen.plan is not None
    evidence = ConfidenceEvidence(
        self_reported=chosen.plan.confidence,
        sample_agreement=_agreement(votes[winner], len(samples)),
        samples=len(samples),
        mean_token_logprob=_mean(chosen.completion.token_logprobs),
        repair_count=repairs,
    )
    return chosen, evidence


def _agreement(votes: int, samples: int) -> Decimal:
    # With one sample this is 1; the evidence model discounts it to "no evidence".
    return (Decimal(votes) / samples).quantize(Decimal("0.0001"))


def _mean(logprobs: tuple[float, ...] | None) -> Decimal | None:
    if not logprobs:
        return None
    mean = Decimal(repr(sum(logprobs) / len(logprobs)))
    return min(Decimal(0), mean.quantize(Decimal("0.000001")))


def _empty(samples: list[_Sample]) -> Plan:
    first_error = next((s.errors[-1] for s in samples if s.errors), "no reply")
    return Plan.empty(f"no valid plan after one repair: {first_error}")
