"""Replay recorded actions through a deployment's policies, touching nothing real.

Input is either a file of actions, one JSON object a line: a :class:`ProposedAction`
(digest in hex) plus optional `at` (ISO time; drives the clock), `confidence` (a
:class:`ConfidenceEvidence`), `claims` (:class:`AuthorityClaims`) and `simulation`
(:class:`SimulationResult`); or the entries of an agent's audit log
(:func:`audit_actions`): each action the policies saw, at the entry's time, with the
plan's confidence evidence. The audit log keeps neither the authority credential's
claims nor simulations, so in such a replay `Authority` and `RequireSimulation` deny.

The policies run against a throwaway store and data directory, so real halts, breakers
and spend do not leak in and nothing leaks out. Every authorized action is treated as
executed, so limits and breaker history build up as they would have.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from config.errors import ConfigError
from config.models import Deployment
from config.store import open_store
from policies.actions import ConfidenceEvidence, ProposedAction
from policies.base import AuthorityClaims, SimulationResult
from policies.engine import Authorized, PolicyEngine


class RecordedAction(BaseModel):
    """One line of the actions file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: ProposedAction
    at: AwareDatetime | None = None
    confidence: ConfidenceEvidence | None = None
    claims: AuthorityClaims | None = None
    simulation: SimulationResult | None = None


class BacktestRow(BaseModel):
    """What the policies would have done with one recorded action."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="Where the action came from: `line 3`, `entry 12`.")
    at: datetime
    summary: str
    verdict: str
    policy: str | None
    reason: str


class _ReplayClock:
    def __init__(self) -> None:
        self.moment = datetime.now(UTC)

    def now(self) -> datetime:
        return self.moment


def read_actions(path: Path) -> list[tuple[str, RecordedAction]]:
    """Parse the actions file; errors name the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the actions file {path}: {exc.strerror}") from exc
    found = []
    for number, text in enumerate(lines, start=1):
        if text.strip():
            found.append((f"line {number}", _parse(path, number, text)))
    return found


def _parse(path: Path, number: int, text: str) -> RecordedAction:
    try:
        data: dict[str, Any] = json.loads(text)
        extras = {k: data.pop(k) for k in ("at", "confidence", "claims", "simulation") if k in data}
        return RecordedAction.model_validate_json(json.dumps({"action": data, **extras}))
    except (json.JSONDecodeError, ValidationError, AttributeError, TypeError) as exc:
        raise ConfigError(f"{path}:{number}: not a recorded action: {exc}") from exc


def audit_actions(
    entries: Iterable[tuple[int, str, Mapping[str, Any]]],
) -> list[tuple[str, RecordedAction]]:
    """The actions recorded in audit entries given as (position, ISO time, body), in
    order; entries without actions (empty or refused plans) contribute none."""
    found = []
    for seq, at, body in entries:
        recorded = [item for item in body.get("actions") or () if item.get("action")]
        for index, item in enumerate(recorded):
            source = f"entry {seq}" if len(recorded) == 1 else f"entry {seq}.{index}"
            found.append((source, _from_audit(source, at, body.get("evidence"), item["action"])))
    return found


def _from_audit(source: str, at: str, evidence: Any, action: Any) -> RecordedAction:
    try:
        # `score` is derived from the rest; the model recomputes it rather than accept it.
        confidence = {k: v for k, v in evidence.items() if k != "score"} if evidence else None
        data = {"action": action, "at": at, "confidence": confidence}
        return RecordedAction.model_validate_json(json.dumps(data))
    except (ValidationError, AttributeError, TypeError) as exc:
        raise ConfigError(f"audit {source}: not a recorded action: {exc}") from exc


async def backtest(
    deployment: Deployment, recorded: Iterable[tuple[str, RecordedAction]]
) -> list[BacktestRow]:
    """Run every recorded action through the deployment's policies, in order."""
    with tempfile.TemporaryDirectory(prefix="covenant-backtest-") as scratch:
        isolated = deployment.model_copy(update={"data_dir": scratch})
        store = open_store(f"sqlite:///{Path(scratch) / 'backtest.db'}")
        clock = _ReplayClock()
        try:
            engine = PolicyEngine(isolated, store, clock=clock)
            return [await _replay(engine, clock, source, item) for source, item in recorded]
        finally:
            store.dispose()


async def _replay(
    engine: PolicyEngine, clock: _ReplayClock, source: str, item: RecordedAction
) -> BacktestRow:
    if item.at is not None:
        clock.moment = item.at
    action = item.action
    if action.agent not in {agent.name for agent in engine.deployment.agents}:
        raise ConfigError(f"{source}: agent {action.agent!r} is not in the deployment")
    ctx = engine.context(
        action.agent,
        plan_id=action.plan_id,
        evidence=item.confidence,
        claims=item.claims,
        simulation=item.simulation,
    )
    outcome = await engine.evaluate(action, ctx)
    policy, reason = (None, "")
    if isinstance(outcome, Authorized):
        await engine.executed(action, ctx)
    else:
        policy, reason = outcome.policy, outcome.reason
    return BacktestRow(
        source=source,
        at=clock.moment,
        summary=action.summary(),
        verdict=outcome.verdict,
        policy=policy,
        reason=reason,
    )
