"""CLI of the policy layer: `policy backtest`, `approvals`, `breakers`, `agents halt|resume`.

Every command takes the deployment FILE and works on its store; a running daemon sees
changes within its control poll interval (one second by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine as SqlEngine

from config.errors import ConfigError
from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store
from policies import approvals as approval_store
from policies import control
from policies.backtest import BacktestRow, RecordedAction, audit_actions, backtest, read_actions

console = Console(emoji=False)  # "did:key:" must print as written, not as an emoji

policy_app = typer.Typer(help="Try policy sets on recorded actions.", no_args_is_help=True)
approvals_app = typer.Typer(help="Decide actions queued for approval.", no_args_is_help=True)
breakers_app = typer.Typer(help="Inspect and reset confidence breakers.", no_args_is_help=True)
agents_app = typer.Typer(help="Halt and resume agents (kill switch).", no_args_is_help=True)

File = Annotated[Path, typer.Argument(help="The deployment YAML file.")]


@contextmanager
def _store(file: Path) -> Iterator[tuple[Deployment, SqlEngine]]:
    deployment = load_deployment(file)
    assert deployment.store.url is not None  # the loader always sets one
    engine = open_store(deployment.store.url)
    try:
        yield deployment, engine
    finally:
        engine.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


@policy_app.command("backtest")
def backtest_command(
    file: File,
    actions: Annotated[
        Path | None, typer.Option(help="JSON lines of recorded actions to replay.")
    ] = None,
    from_audit: Annotated[
        Path | None,
        typer.Option(
            "--from-audit",
            help="Replay the actions in the audit log of this deployment's store (FILE "
            "itself, or e.g. production's YAML to try FILE's policies on what it did).",
        ),
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's actions.")] = None,
) -> None:
    """Replay recorded actions through FILE's policies; print what each would get."""
    deployment = load_deployment(file)
    if (actions is None) == (from_audit is None):
        raise ConfigError(
            "give exactly one source of actions: --actions FILE.jsonl or --from-audit "
            "DEPLOYMENT.yaml"
        )
    if actions is not None:
        recorded = read_actions(actions)
    else:
        assert from_audit is not None
        recorded = _audit_recorded(from_audit, agent)
    recorded = [(n, item) for n, item in recorded if agent in (None, item.action.agent)]
    rows = asyncio.run(backtest(deployment, recorded))
    _print_backtest(rows)


def _audit_recorded(file: Path, agent: str | None) -> list[tuple[str, RecordedAction]]:
    # The CLI is where the layers meet; the policy layer proper never imports agents.
    from agents import audit

    with _store(file) as (_, engine):
        known = audit.agents(engine)
        if agent is not None and agent not in known:
            raise ConfigError(
                f"no audit log for agent {agent!r} in the store of {file}; agents with one: "
                f"{', '.join(known) or 'none'}"
            )
        names = [agent] if agent is not None else known
        recorded: list[tuple[str, RecordedAction]] = []
        for name in names:
            entries = [(r.seq, r.at, r.body) for r in audit.entries(engine, name)]
            labelled = [(f"{name} {src}", item) for src, item in audit_actions(entries)]
            recorded += labelled
            problems = len(audit.verify(engine, name).problems)
            if problems:
                console.print(
                    f"[yellow]warning:[/] the audit log of {name} has {problems} problem(s); "
                    f"`audit verify {file}` lists them. Replaying it as stored."
                )
    # Several agents' logs interleave by time, as the daemon evaluated them.
    return sorted(recorded, key=lambda pair: pair[1].at or _now())


def _print_backtest(rows: list[BacktestRow]) -> None:
    table = Table("from", "at", "action", "verdict", "policy", "reason")
    colour = {"authorized": "green", "denied": "red", "queued": "yellow"}
    for row in rows:
        table.add_row(
            row.source,
            row.at.isoformat(timespec="seconds"),
            row.summary,
            f"[{colour[row.verdict]}]{row.verdict}[/]",
            row.policy or "",
            row.reason,
        )
    console.print(table)
    counts = {verdict: sum(r.verdict == verdict for r in rows) for verdict in colour}
    console.print(", ".join(f"{count} {verdict}" for verdict, count in counts.items()))


@approvals_app.command("list")
def approvals_list(
    file: File, every: Annotated[bool, typer.Option("--all", help="Not only pending.")] = False
) -> None:
    """List approval requests (pending ones unless --all)."""
    with _store(file) as (_, engine):
        requests = approval_store.list_requests(engine, None if every else "pending")
    table = Table("id", "agent", "status", "expires", "action", "reason")
    for r in requests:
        table.add_row(
            r.id, r.agent, r.status, r.expires_at.isoformat(timespec="seconds"), r.summary, r.reason
        )
    console.print(table if requests else "no approval requests")


@approvals_app.command("approve")
def approvals_approve(file: File, request_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Approve request ID: exactly that transaction may be signed once, until it expires."""
    with _store(file) as (_, engine):
        request = approval_store.decide(engine, request_id, approve=True, now=_now())
    console.print(
        f"[green]approved[/] {request.id}: {request.summary}; valid until "
        f"{request.expires_at.isoformat(timespec='seconds')}"
    )


@approvals_app.command("reject")
def approvals_reject(file: File, request_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Reject request ID."""
    with _store(file) as (_, engine):
        request = approval_store.decide(engine, request_id, approve=False, now=_now())
    console.print(f"[red]rejected[/] {request.id}: {request.summary}")


@breakers_app.command("list")
def breakers_list(file: File) -> None:
    """Show each agent's breaker state."""
    with _store(file) as (deployment, engine):
        stored = {row.agent: row for row in control.breakers(engine)}
    table = Table("agent", "state", "since", "failures", "reason")
    for agent in deployment.agents:
        if not any("ConfidenceBreaker" in spec for spec in agent.policies):
            continue
        row = stored.get(agent.name)
        if row is None:
            table.add_row(agent.name, "closed", "", "0", "never evaluated")
            continue
        since = row.opened_at.isoformat(timespec="seconds") if row.opened_at else ""
        table.add_row(agent.name, row.state, since, str(row.failures), row.reason)
    console.print(table)


@breakers_app.command("reset")
def breakers_reset(file: File, agent: str) -> None:
    """Close AGENT's breaker and clear its counters."""
    with _store(file) as (deployment, engine):
        _known_agent(deployment, agent)
        if not control.reset_breaker(engine, agent, _now()):
            raise ConfigError(f"agent {agent!r} has no breaker state yet; nothing to reset")
    console.print(f"[green]breaker of {agent} closed[/]")


@agents_app.command("halt")
def agents_halt(
    file: File,
    agent: Annotated[str | None, typer.Argument(help="Agent to halt.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Halt every agent.")] = False,
    reason: Annotated[str, typer.Option(help="Why; shown in every denial.")] = "halted by CLI",
) -> None:
    """Halt AGENT (or --all): its KillSwitch policy denies every action until resumed."""
    with _store(file) as (deployment, engine):
        target = _target(deployment, agent, every)
        control.halt(engine, target, reason, _now())
    unguarded = [
        a.name
        for a in deployment.agents
        if target in (control.GLOBAL, a.name) and not any("KillSwitch" in s for s in a.policies)
    ]
    console.print(f"[red]halted[/] {'every agent' if every else agent}")
    if unguarded:
        console.print(
            f"[yellow]warning:[/] {', '.join(unguarded)} ha(s/ve) no KillSwitch "
            "policy; add `- KillSwitch: {{}}` first in its policies for halts to apply"
        )


@agents_app.command("resume")
def agents_resume(
    file: File,
    agent: Annotated[str | None, typer.Argument(help="Agent to resume.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Lift the global halt.")] = False,
) -> None:
    """Lift the halt on AGENT (or the global one with --all)."""
    with _store(file) as (deployment, engine):
        target = _target(deployment, agent, every)
        if not control.resume(engine, target):
            raise ConfigError(f"{'no global halt' if every else f'{agent!r} is not halted'}")
        remaining = [h.target for h in control.halts(engine)]
    console.print(f"[green]resumed[/] {'every agent' if every else agent}")
    if control.GLOBAL in remaining:
        console.print("[yellow]note:[/] a global halt is still on; `agents resume --all`")


def _target(deployment: Deployment, agent: str | None, every: bool) -> str:
    if every == (agent is not None):
        raise ConfigError("name one AGENT or pass --all")
    if agent is None:
        return control.GLOBAL
    _known_agent(deployment, agent)
    return agent


def _known_agent(deployment: Deployment, agent: str) -> None:
    names = [a.name for a in deployment.agents]
    if agent not in names:
        raise ConfigError(f"unknown agent {agent!r}; the deployment has {', '.join(names)}")


def register(app: typer.Typer) -> None:
    """Add the policy commands."""
    app.add_typer(policy_app, name="policy")
    app.add_typer(approvals_app, name="approvals")
    app.add_typer(breakers_app, name="breakers")
    app.add_typer(agents_app, name="agents")
