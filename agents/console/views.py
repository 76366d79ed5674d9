"""What the console's pages show, gathered through the read paths `status`, `audit
show`, `approvals list` and `swaps list` use; nothing here writes.

Every amount is formatted from Decimal or integer base units, never a float. Nothing here
reads a key, a seed or a preimage: held transactions are shown from their decoded
action (chain, asset, amount, recipient, digest), audit bodies are already free of
secrets (the audit writer refuses them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from agents import audit
from agents.actions import KINDS
from agents.agent import Agent
from agents.held import HeldActions
from chains.atomic.store import PlanStore
from config.models import Deployment
from config.types import plain_amount
from policies import control
from policies.approvals import ApprovalRequest, list_requests


@dataclass(frozen=True)
class Sources:
    """Where the views read: the daemon's store and deployment, its live agents and the
    scheduler's next tick of each."""

    deployment: Deployment
    store: Engine
    agents: Mapping[str, Agent]
    next_tick: Callable[[str], datetime | None]
    did_of: Callable[[str], str | None]


def when(moment: datetime | None) -> str:
    """`moment` in UTC, to the second, or '-'."""
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def overview(src: Sources) -> list[dict[str, str]]:
    """One row per agent: state, ticks, next tick, breaker, last headline, balances."""
    halted = {h.target: h.reason for h in control.halts(src.store)}
    breakers = {row.agent: row for row in control.breakers(src.store)}
    rows = []
    for config in src.deployment.agents:
        agent = src.agents.get(config.name)
        observed = agent.last_observation if agent else None
        halt = halted.get(config.name) or halted.get(control.GLOBAL)
        breaker = breakers.get(config.name)
        rows.append(
            {
                "name": config.name,
                "state": f"halted: {halt}" if halt is not None else "running",
                "ticks": str(len(agent.reports)) if agent else "0",
                "next_tick": when(src.next_tick(config.name)),
                "breaker": breaker.state if breaker else "closed",
                "headline": agent.reports[-1].headline() if agent and agent.reports else "-",
                "balances": ", ".join(
                    f"{plain_amount(b.amount)} {b.asset} on {b.chain}" for b in observed.balances
                )
                if observed
                else "-",
            }
        )
    return rows


def agent_page(src: Sources, name: str, last: int = 25) -> dict[str, Any]:
    """An agent's recent audit entries, each with its verification status."""
    report = audit.verify(src.store, name, expected_did=src.did_of(name))
    problems = {p.seq: f"{p.kind}: {p.message}" for p in report.problems}
    records = audit.entries(src.store, name)[-last:]
    return {
        "name": name,
        "log_ok": report.ok,
        "entries": report.entries,
        "did": report.did or "-",
        "problems": [f"entry {p.seq} {p.kind}: {p.message}" for p in report.problems],
        "records": [_entry(r, problems.get(r.seq)) for r in reversed(records)],
    }


def _entry(record: audit.AuditRecord, problem: str | None) -> dict[str, Any]:
    body = record.body
    evidence = body.get("evidence") or {}
    plan = body.get("plan") or {}
    return {
        "seq": record.seq,
        "at": record.at,
        "hash": record.hash[:16],
        "status": problem or "verified",
        "console": body.get("console"),
        "plan_ended": body.get("plan_ended"),  # how an escrow plan ended, between ticks
        "plan": "; ".join(_action(a) for a in plan.get("actions", [])) or "no action",
        "rationale": plan.get("rationale", ""),
        "confidence": evidence.get("score", "-"),
        "evidence": _evidence(evidence),
        "actions": [
            {
                "state": item.get("state", ""),
                "policy": item.get("policy") or "-",
                "summary": item.get("summary", ""),
                "tx": item.get("tx_id") or "",
            }
            for item in body.get("actions", [])
        ],
        "errors": list(body.get("planner_errors", [])),
    }


def _evidence(evidence: Mapping[str, Any]) -> str:
    if not evidence:
        return ""
    return (
        f"agreement {evidence.get('sample_agreement')} of {evidence.get('samples')}, "
        f"token logprob {evidence.get('mean_token_logprob')}, self "
        f"{evidence.get('self_reported')}, repairs {evidence.get('repair_count')}"
    )


def _action(action: Mapping[str, Any]) -> str:
    kind = KINDS.get(str(action.get("kind")))
    if kind is not None:
        try:
            return kind.describe(kind.model.model_validate(action))
        except ValidationError:
            pass
    return str(action.get("kind", "?"))


def plans(src: Sources) -> list[dict[str, Any]]:
    """Every cross-chain plan, newest first, with each leg's state and deadline."""
    found = sorted(
        PlanStore(src.store).plans(),
        key=lambda p: p.created_at or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    return [
        {
            "id": plan.plan_id,
            "agent": plan.agent,
            "kind": plan.kind,
            "state": plan.state,
            "reason": plan.reason or "",
            "legs": [
                {
                    "chain": leg.chain,
                    "amount": _base_units(src.deployment, leg.chain, leg.asset, leg.amount),
                    "state": state,
                    "deadline": when(datetime.fromtimestamp(leg.deadline, UTC)),
                    "ours": "ours" if leg.ours else "counterparty's",
                }
                for leg, state in zip(plan.legs, plan.leg_states, strict=False)
            ],
        }
        for plan in found
    ]


def _base_units(deployment: Deployment, chain: str, token: str | None, amount: int) -> str:
    """`amount` base units in the asset's own units, from the deployment's decimals."""
    for asset in deployment.assets:
        native = token is None and asset.native
        same = token is not None and token.lower() in (
            (asset.erc20 or "").lower(),
            (asset.spl_mint or "").lower(),
        )
        if asset.chain == chain and (native or same):
            return f"{plain_amount(Decimal(amount).scaleb(-asset.decimals))} {asset.symbol}"
    return f"{amount} base units"


def approvals(src: Sources) -> list[dict[str, Any]]:
    """Pending approvals with their held transaction decoded."""
    held = HeldActions(src.store)  # a fresh reader: its cache would never see new rows
    by_id = {h.approval_id: h for a in src.deployment.agents for h in held.waiting(a.name)}
    return [_approval(request, by_id.get(request.id)) for request in _pending(src)]


def _pending(src: Sources) -> list[ApprovalRequest]:
    return list_requests(src.store, "pending")


def _approval(request: ApprovalRequest, held: Any) -> dict[str, Any]:
    action = held.action if held is not None else None
    return {
        "id": request.id,
        "agent": request.agent,
        "summary": request.summary,
        "reason": request.reason,
        "digest": request.digest,
        "requested": when(request.requested_at),
        "expires": when(request.expires_at),
        "chain": action.chain if action else "-",
        "asset": action.asset if action else "-",
        "amount": plain_amount(action.amount) if action else "-",
        "base_units": str(action.amount_base_units) if action else "-",
        "recipient": action.recipient if action else "-",
        "recipient_address": action.recipient_address if action else "-",
        "kind": action.kind if action else "-",
    }
