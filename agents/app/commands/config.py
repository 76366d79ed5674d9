"""CLI commands of the foundation: `init`, `config validate | schema`, `doctor`."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

import config
from agents.actions import validate_deployment_actions
from agents.app.doctor import run_checks
from agents.planners.scripted import validate_scripted_plans
from agents.sources import validate_deployment_sources
from config.errors import ConfigError
from config.loader import load_deployment, locate
from config.models import Deployment
from config.reference import END, START, render_reference
from policies.registry import validate_deployment_policies

console = Console(emoji=False)  # "did:key:" must print as written, not as an emoji

DeploymentCheck = Callable[[Deployment], list[str]]
DEPLOYMENT_CHECKS: tuple[DeploymentCheck, ...] = (
    validate_deployment_actions,
    validate_deployment_policies,
    validate_deployment_sources,
    validate_scripted_plans,
)
"""Each package's own check of a loaded deployment (action kinds, policies, sources,
scripted plans);
each returns problems that start with their field path."""


def load_checked_deployment(file: Path) -> Deployment:
    """Load FILE and run every package's deployment check; each problem is reported as
    ``file:line: field: message`` like the loader's own."""
    deployment = load_deployment(file)
    problems = [problem for check in DEPLOYMENT_CHECKS for problem in check(deployment)]
    if problems:
        raise locate(file, problems)
    return deployment


DEMO = Path(config.__file__).resolve().parent / "demo.yaml"
"""The demo deployment, shipped inside the config package (`config/demo.yaml`)."""

config_app = typer.Typer(
    help="Validate deployments and print their JSON Schema.", no_args_is_help=True
)


@config_app.command("validate")
def validate(file: Path) -> None:
    """Check FILE: syntax, types, references, and each package's own checks."""
    deployment = load_checked_deployment(file)
    console.print(
        f"[green]{file} is valid[/]: {len(deployment.agents)} agents, "
        f"{len(deployment.chains)} chains, {len(deployment.planners)} planners"
    )


@config_app.command("schema")
def schema() -> None:
    """Print the deployment JSON Schema (point your editor's YAML plugin at it)."""
    print(json.dumps(Deployment.model_json_schema(), indent=2))


@config_app.command("reference")
def reference(write: Path | None = None) -> None:
    """Print the configuration reference; with --write README.md, update it in place."""
    text = render_reference()
    if write is None:
        print(text, end="")
        return
    current = write.read_text(encoding="utf-8")
    if START not in current or END not in current:
        raise ConfigError(f"{write} has no configuration reference markers ({START})")
    before, rest = current.split(START, 1)
    after = rest.split(END, 1)[1]
    write.write_text(before + text.rstrip("\n") + after, encoding="utf-8")
    console.print(f"[green]updated the configuration reference in {write}[/]")


def init(directory: Path) -> None:
    """Scaffold a working local deployment in DIRECTORY (from the demo)."""
    target = directory / "covenant.yaml"
    if target.exists():
        raise ConfigError(f"{target} already exists; choose an empty directory")
    name = re.sub(r"[^a-z0-9_-]", "-", directory.resolve().name.lower()).strip("-") or "agents"
    if not name[0].isalpha():
        name = f"d-{name}"
    text = DEMO.read_text(encoding="utf-8")
    text = text.replace("name: demo\n", f"name: {name}\n", 1)
    text = text.replace("data_dir: ../.covenant/demo\n", "data_dir: .covenant\n", 1)
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    # The demo's invoice inbox, beside the deployment as its TaskFile source expects.
    inbox = DEMO.with_name("demo-invoices.yaml")
    (directory / inbox.name).write_text(inbox.read_text(encoding="utf-8"), encoding="utf-8")
    load_deployment(target)
    console.print(
        f"[green]created {target}[/]\nnext: python main.py config validate {target}"
        f"\n      python main.py run {target}"
    )


def doctor(file: Path, timeout: float = 5.0) -> None:
    """Check every RPC, Ollama, the keystore and the store of FILE."""
    deployment = load_deployment(file)
    results = asyncio.run(run_checks(deployment, timeout))
    table = Table("check", "target", "status", "detail", title=f"doctor {file}")
    colours = {"ok": "green", "fail": "red", "skip": "yellow"}
    for result in results:
        table.add_row(
            result.check,
            result.target,
            f"[{colours[result.status]}]{result.status}[/]",
            result.detail,
        )
    console.print(table)
    failures = [result for result in results if result.status == "fail"]
    for result in failures:  # unwrapped, so logs and grep see each problem whole
        console.print(
            f"[red]FAIL[/] {result.check} ({result.target}): {result.detail}",
            soft_wrap=True,
            highlight=False,
        )
    if failures:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the foundation commands to the main CLI."""
    app.add_typer(config_app, name="config")
    app.command("init")(init)
    app.command("doctor")(doctor)
