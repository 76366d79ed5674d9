"""`swaps list | show`: the coordinator's plans from the deployment's store.

Both only read the store. `swaps recover` drives the open plans, which takes the whole
runtime (wallets, adapters, the policy engine), and dependencies point inward, so it is
declared and registered by :mod:`agents.app.daemon`. Both modules reach the one `swaps`
group of an app through :func:`swaps_group` and add their commands with
:func:`add_command`, which refuses a command registered twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from chains.atomic.store import PlanRecord, PlanStore
from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store

console = Console(emoji=False)  # "did:key:" must print as written, not as an emoji
GROUP = "swaps"


def swaps_group(app: typer.Typer) -> typer.Typer:
    """The `swaps` command group of `app`, added to it on first use."""
    for info in app.registered_groups:
        if info.name == GROUP and info.typer_instance is not None:
            return info.typer_instance
    group = typer.Typer(
        help="Cross-chain plans and swaps: list, show, recover.", no_args_is_help=True
    )
    app.add_typer(group, name=GROUP)
    return group


def add_command(group: typer.Typer, name: str, command: Callable[..., None]) -> None:
    """Register `command` as `name` in `group`; each command has exactly one home."""
    if any(info.name == name for info in group.registered_commands):
        raise ValueError(
            f"command `{GROUP} {name}` is already registered; register it in one place only"
        )
    group.command(name)(command)


def _store(file: Path, agent: str | None = None) -> tuple[Deployment, PlanStore]:
    deployment = load_deployment(file)
    return deployment, PlanStore(open_store(deployment.store.url or ""), agent)


def list_plans(file: Path, open_only: bool = typer.Option(False, "--open")) -> None:
    """Every plan and swap in FILE's store (with --open, only unfinished ones)."""
    deployment, store = _store(file)
    table = Table("plan", "agent", "kind", "state", "counterparty", "legs", "reason")
    for plan in store.plans(open_only=open_only):
        legs = ", ".join(
            f"{leg.chain}:{state}" for leg, state in zip(plan.legs, plan.leg_states, strict=True)
        )
        table.add_row(
            plan.plan_id,
            plan.agent,
            plan.kind,
            plan.state,
            counterparty_of(deployment, plan),
            legs,
            plan.reason or "",
        )
    console.print(table)


def show(
    file: Path,
    plan_id: str,
    agent: str | None = typer.Option(None, help="Whose side, when both agents are local."),
) -> None:
    """One plan: its terms, each leg and every journaled step."""
    deployment, store = _store(file, agent)
    plan = store.get(plan_id)
    store = store.scoped(plan.agent)
    console.print(_summary(plan), highlight=False)
    if plan.counterparty:
        console.print(f"counterparty {counterparty_of(deployment, plan)}", highlight=False)
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


def counterparty_of(deployment: Deployment, plan: PlanRecord) -> str:
    """The swap's counterparty by DID, with its address-book name when the book has
    that DID (another operator's agent); empty for a plan with no counterparty."""
    did = plan.counterparty or ""
    name = next((e.name for e in deployment.address_book if did and e.did == did), None)
    return f"{name} ({did})" if name else did


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


def register(app: typer.Typer) -> None:
    """Add `swaps list` and `swaps show` to the CLI (`swaps recover`: agents.app.daemon)."""
    group = swaps_group(app)
    add_command(group, "list", list_plans)
    add_command(group, "show", show)
