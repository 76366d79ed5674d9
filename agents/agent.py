"""One agent's tick: observe, plan, authorize, execute, record.

The planner's output is a validated :class:`~agents.plan.Plan` of names and decimal
amounts; nothing it says reaches a signer except through the policy engine. Every tick,
including one whose plan was empty or malformed, leaves one signed audit entry.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from agents import log_context
from agents.actions import kind_of
from agents.actions.base import ActionResult, EscrowHandler, Executors
from agents.observe import Observer
from agents.payments import PaymentExecutor
from agents.plan import Action, Plan, failed_evidence
from agents.planners.base import Planner
from agents.planners.types import Observation, PendingApproval, PlanResult
from agents.screen import screened
from config.canonical import sha256_hex
from config.errors import PlannerError
from config.models import AgentConfig
from policies.actions import ConfidenceEvidence

log = logging.getLogger(__name__)


class AuditSink(Protocol):
    """Where a tick's record goes (the signed, hash-chained audit log)."""

    async def record(self, agent: str, entry: dict[str, Any]) -> Any:
        """Append `entry` to `agent`'s log; return once it is durable."""
        ...


PendingSource = Callable[[str], list[PendingApproval]]


@dataclass
class TickReport:
    """What one tick did, for the live status view and the summary."""

    plan_id: str
    actions: int
    results: list[ActionResult] = field(default_factory=list)
    confidence: str = "0"
    errors: tuple[str, ...] = ()
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0
    """Wall time of the planner's call (for metrics; never part of any decision)."""

    def headline(self) -> str:
        """One line: what the plan held and what became of each action."""
        if not self.results:
            return f"no action (confidence {self.confidence})"
        states = ", ".join(f"{result.state}: {result.summary}" for result in self.results)
        return f"{len(self.results)} action(s), confidence {self.confidence}: {states}"


@dataclass
class Agent:
    """A long-running agent: its planner, its view of the world and its executor."""

    config: AgentConfig
    planner: Planner
    observer: Observer
    executor: PaymentExecutor
    audit: AuditSink
    pending: PendingSource
    atomic: EscrowHandler | None = None
    extras: Callable[[Observation], Observation] | None = None
    on_planned: Callable[[], None] | None = None
    reports: list[TickReport] = field(default_factory=list)
    last_observation: Observation | None = None

    @property
    def name(self) -> str:
        """The agent's name."""
        return self.config.name

    async def tick(self) -> TickReport:
        """Observe, plan, authorize and execute each action, and record the tick."""
        resumed = await self.executor.resume_approved()
        for outcome in resumed:
            self._settled(outcome)
            self.observer.remember(
                f"approved action {outcome.state}: {outcome.summary}",
                ok=outcome.state == "executed",
            )
        observation = await self.observer.observe(self.pending(self.name))
        if self.extras is not None:  # open swaps and offers from other agents
            observation = self.extras(observation)
        # Tasks the balance or a policy rules out are kept from the model (and recorded).
        observation = screened(observation, self.executor.engine.screen)
        self.last_observation = observation
        started = time.perf_counter()
        try:
            result = await self.planner.plan(observation)
            planned = True
        except PlannerError as exc:
            # The model server is down or lacks the model: no plan, nothing to judge. The
            # tick is still recorded (and says why); it does not count as a low-confidence
            # plan for the breaker, since no model spoke.
            log.warning("agent %s: %s", self.name, exc)
            result = PlanResult(
                plan=Plan.empty(f"no plan: {exc}"),
                evidence=failed_evidence(1, 0),
                errors=(str(exc),),
            )
            planned = False
        model_seconds = time.perf_counter() - started
        if self.on_planned is not None and result.plan.actions:
            # Durable before any action is taken. An empty plan replayed after a crash
            # does nothing, so it is not worth an fsync.
            self.on_planned()
        plan_id = f"{self.name}-{uuid.uuid4().hex[:16]}"
        log_context.PLAN.set(plan_id)  # reset by the runtime when the tick ends
        report = TickReport(
            plan_id,
            len(result.plan.actions),
            confidence=str(result.evidence.score),
            errors=result.errors,
            model_calls=result.model_calls,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            model_seconds=model_seconds,
        )
        report.results.extend(resumed)
        if planned:
            await self.executor.engine.plan_observed(self.name, plan_id, result.evidence)
        for action in result.plan.actions:
            outcome = await self._act(action, plan_id, result.evidence, observation)
            report.results.append(outcome)
            self._settled(outcome)
            self.observer.remember(
                f"{outcome.state}: {outcome.summary}", ok=outcome.state == "executed"
            )
        # Shares a commit with other agents' entries that are waiting (group commit).
        await self.audit.record(
            self.name, audit_entry(observation, result, plan_id, report.results)
        )
        self.reports.append(report)
        return report

    def _settled(self, outcome: ActionResult) -> None:
        """A task whose payment was executed, or sent with its outcome not known yet, is
        no longer open for this agent: paying it again could pay it twice."""
        if outcome.state in ("executed", "pending") and outcome.action and outcome.action.task:
            self.observer.settled.add(outcome.action.task)

    async def _act(
        self, action: Action, plan_id: str, evidence: ConfidenceEvidence, seen: Observation
    ) -> ActionResult:
        # Each kind knows its execution strategy: one transaction or an escrow plan; a
        # task the plan names is the one the model saw, from this observation.
        executors = Executors(
            payments=self.executor,
            escrow=self.atomic,
            tasks=MappingProxyType({task.id: task for task in seen.tasks}),
        )
        return await kind_of(action).execute(action, plan_id, evidence, executors)


def audit_entry(
    observation: Observation,
    result: PlanResult,
    plan_id: str,
    results: Sequence[ActionResult],
) -> dict[str, Any]:
    """The audit record of one tick: digests of the inputs, the model's raw output, the
    parsed plan, the confidence evidence, each verdict, transactions and outcomes."""
    return {
        "plan_id": plan_id,
        "observation_digest": sha256_hex(observation.model_dump(mode="json")),
        "prompt_digest": result.prompt_digest,
        "raw_outputs": list(result.raw_outputs),
        "set_aside": [item.model_dump(mode="json") for item in observation.set_aside],
        "plan": result.plan.model_dump(mode="json"),
        "evidence": result.evidence.model_dump(mode="json"),
        "planner_errors": list(result.errors),
        "actions": [_result_record(item) for item in results],
    }


def _result_record(result: ActionResult) -> dict[str, Any]:
    action = result.action
    return {
        "state": result.state,
        "summary": result.summary,
        "policy": result.policy,
        "tx_id": result.tx_id,
        "approval_id": result.approval_id,
        "action": action.model_dump(mode="json") if action is not None else None,
    }
