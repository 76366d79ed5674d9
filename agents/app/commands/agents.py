"""CLI commands of the agents package: ``audit verify`` and ``audit show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agents import audit
from agents.actions import KINDS
from agents.app import daemon
from config.errors import AuditError
from config.loader import load_deployment
from config.store import open_store

console = Console(emoji=False)  # "did:key:" must print as written, not as an emoji

audit_app = typer.Typer(help="Verify and read agents' signed audit logs.", no_args_is_help=True)

DidOption = Annotated[
    str | None,
    typer.Option(help="The agent's did:key (from `did show`); default: the first entry's."),
]


@audit_app.command("verify")
def verify(
    file: Path,
    agent: Annotated[str | None, typer.Argument(help="One agent; default: all.")] = None,
    did: DidOption = None,
) -> None:
    """Check the hash chain, positions and signatures of the audit log(s) in FILE's store."""
    deployment = load_deployment(file)
    engine = open_store(str(deployment.store.url))
    try:
        names = (
            [agent]
            if agent
            else sorted({a.name for a in deployment.agents} | set(audit.agents(engine)))
        )
        reports = [audit.verify(engine, name, expected_did=did) for name in names]
    finally:
        engine.dispose()
    _print_reports(reports)
    broken = [report.agent for report in reports if not report.ok]
    if broken:
        raise AuditError(
            f"the audit log of {', '.join(broken)} failed verification; the entries named "
            "above were changed, moved or removed after they were signed"
        )


def _print_reports(reports: list[audit.AuditReport]) -> None:
    table = Table("agent", "entries", "signed by", "status", title="audit verify")
    for report in reports:
        status = "[green]intact[/]" if report.ok else f"[red]{len(report.problems)} problem(s)[/]"
        table.add_row(report.agent, str(report.entries), report.did or "-", status)
    console.print(table)
    for report in reports:
        for problem in report.problems:
            console.print(
                Text.assemble(
                    (report.agent, "red"),
                    f" entry {problem.seq} ",
                    (problem.kind, "bold"),
                    f": {problem.message}",
                )
            )


@audit_app.command("show")
def show(
    file: Path,
    agent: str,
    last: Annotated[int, typer.Option(help="Show only the last N entries (0: all).")] = 20,
) -> None:
    """Print AGENT's audit entries readably, newest last."""
    deployment = load_deployment(file)
    engine = open_store(str(deployment.store.url))
    try:
        records = audit.entries(engine, agent)
    finally:
        engine.dispose()
    if not records:
        console.print(f"{agent} has no audit entries yet")
        return
    for record in records[-last:] if last > 0 else records:
        console.print(_panel(record))


def _panel(record: audit.AuditRecord) -> Panel:
    body = record.body
    facts = Table.grid(padding=(0, 2))
    if body.get("observation_digest"):  # console actions have none
        facts.add_row("observation", body["observation_digest"][:16] + "…")
    if body.get("prompt_digest"):
        facts.add_row("prompt", body["prompt_digest"][:16] + "…")
    if body.get("evidence"):
        facts.add_row("confidence", _evidence(body["evidence"]))
    for name, value in (("plan", _plan(body.get("plan"))), ("note", body.get("note"))):
        if value:
            facts.add_row(name, Text(value))
    parts: list[Any] = [facts]
    parts += _listing("verdicts", [_verdict(v) for v in body.get("verdicts", [])])
    parts += _listing("transactions", [_pairs(t) for t in body.get("transactions", [])])
    parts += _listing("outcomes", [_pairs(o) for o in body.get("outcomes", [])])
    parts += _listing("errors", list(body.get("errors", [])))
    parts += _listing("model output", [_cut(o, 300) for o in body.get("raw_outputs", [])])
    parts += _others(body)
    title = f"{record.agent} #{record.seq}  {record.at}"
    return Panel(Group(*parts), title=title, subtitle=f"hash {record.hash[:16]}…")


_SHOWN = {
    "observation_digest",
    "prompt_digest",
    "evidence",
    "plan",
    "note",
    "verdicts",
    "transactions",
    "outcomes",
    "errors",
    "raw_outputs",
}


def _others(body: dict[str, Any]) -> list[Text]:
    """Fields of records written by other code (e.g. the runtime's per-action results)."""
    lines: list[Text] = []
    for key in sorted(set(body) - _SHOWN):
        value = body[key]
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            lines += _listing(key, [_pairs(item) for item in value])
        elif value not in (None, "", [], {}):
            lines.append(Text(f"{key}: {_cut(str(value), 300)}"))
    return lines


def _evidence(evidence: dict[str, Any]) -> str:
    logprob = evidence.get("mean_token_logprob")
    return (
        f"{evidence.get('score')} (self {evidence.get('self_reported')}, agreement "
        f"{evidence.get('sample_agreement')} of {evidence.get('samples')}, token logprob "
        f"{logprob if logprob is not None else '-'}, repairs {evidence.get('repair_count')})"
    )


def _plan(plan: dict[str, Any] | None) -> str:
    if plan is None:
        return ""
    actions = [_action(action) for action in plan.get("actions", [])] or ["no action"]
    return "; ".join(actions) + (f" — {plan['rationale']}" if plan.get("rationale") else "")


def _action(action: dict[str, Any]) -> str:
    """The recorded action as its kind describes it; a record no kind reads any more (an
    older or edited log) is shown as it was stored."""
    kind = KINDS.get(str(action.get("kind")))
    if kind is not None:
        try:
            return kind.describe(kind.model.model_validate(action))
        except ValidationError:
            pass
    return json.dumps(action, sort_keys=True)


def _verdict(verdict: dict[str, Any]) -> str:
    reason = f": {verdict['reason']}" if verdict.get("reason") else ""
    return f"action {verdict['action']} {verdict['policy']} → {verdict['verdict']}{reason}"


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items())


def _listing(title: str, lines: list[str]) -> list[Text]:
    if not lines:
        return []
    return [Text(f"{title}:", style="bold"), *(Text(f"  {line}") for line in lines)]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def register(app: typer.Typer) -> None:
    """Add `run`, `status` and the `audit` command group to the main CLI."""
    daemon.register(app)
    app.add_typer(audit_app, name="audit")
