"""`swaps list | show`: the coordinator's plans from the deployment's store.

Both only read the store. `swaps recover` drives the open plans, which takes the whole
runtime (wallets, adapters, the policy engine), so :mod:`agents.daemon` adds it to
this group.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from chains.atomic.store import PlanRecord, PlanStore
from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store

console = Console()
swaps_app = typer.Typer(
    help="Cross-chain plans and swaps: list, show, recover.", no_args_is_help=True
)


def _store(file: Path, agent: str | None = None) -> tuple[Deployment, PlanStore]:
    deployment = load_deployment(file)
    return deployment, PlanStore(open_store(deployment.store.url or ""), agent)


@swaps_app.command("list")
def list_plans(file: Path, open_only: bool = typer.Option(False, "--open")) -> None:
    """Every plan and swap in FILE's store (with --open, only unfinished ones)."""
    _, store = _store(file)
    table = Table("plan", "agent", "kind", "state", "legs", "reason")
    for plan in store.plans(open_only=open_only):
        legs = ", ".join(
            f"{leg.chain}:{state}" for leg, state in zip(plan.legs, plan.leg_states, strict=True)
        )
        table.add_row(plan.plan_id, plan.agent, plan.kind, plan.state, legs, plan.reason or "")
    console.print(table)


@swaps_app.command("show")
def show(
    file: Path,
    plan_id: str,
    agent: str | None = typer.Option(None, help="Whose side, when both agents are local."),
) -> None:
    """One plan: its terms, each leg and every journaled step."""
    _, store = _store(file, agent)
    plan = store.get(plan_id)
    store = store.scoped(plan.agent)
    console.print(_summary(plan), highlight=False)
    legs = Table("leg", "chain", "sender", "recipient", "amount", "deadline", "escrow", "state")
    for leg, state in zip(plan.legs, plan.leg_states, strict=True):
        legs.add_row(
            str(leg.index),
            leg.chain,
            leg.sender,
            leg.recipient,
            str(leg.amount),
            str(leg.deadline),
            leg.locator,
            state,
        )
    console.print(legs)
    steps = Table("step", "leg", "purpose", "status", "tx", "reason")
    for step in store.steps(plan_id):
        steps.add_row(
            str(step.id),
            str(step.idx),
            step.purpose,
            step.status,
            step.tx_id or "",
            step.reason or "",
        )
    console.print(steps)


def _summary(plan: PlanRecord) -> str:
    # The hashlock is public (it is on chain); the preimage is never stored or shown.
    secret = (
        "derived from the agent seed, never stored"
        if plan.preimage_journaled
        else "held by the counterparty"
    )
    reason = f" - {plan.reason}" if plan.reason else ""
    return (
        f"[bold]{plan.plan_id}[/] ({plan.kind} of {plan.agent}): {plan.state}{reason}\n"
        f"hashlock 0x{plan.hashlock.hex()}; preimage {secret}"
    )


@swaps_app.command("recover")
def register(app: typer.Typer) -> None:
    """Add the `swaps` command group to the CLI."""
    app.add_typer(swaps_app, name="swaps")
