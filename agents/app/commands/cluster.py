"""`cluster status FILE`: the live daemons of a cluster deployment and their agents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agents.cluster import status as cluster_status
from config.errors import ConfigError
from config.loader import load_deployment
from config.store import open_store

console = Console()
cluster_app = typer.Typer(help="Cluster mode: daemons sharing a deployment.", no_args_is_help=True)

File = Annotated[Path, typer.Argument(help="The deployment YAML file.")]
All = Annotated[bool, typer.Option("--all", help="Also daemons that are gone.")]


@cluster_app.command("status")
def status(file: File, everything: All = False) -> None:
    """The live daemons (by the database's clock), each with the agents it holds."""
    deployment = load_deployment(file)
    if deployment.cluster is None:
        raise ConfigError(f"{file}: has no `cluster:` section, so one daemon runs it")
    engine = open_store(deployment.store.url or "")
    try:
        found = cluster_status.daemons(engine, include_gone=everything)
        leases = cluster_status.leases(engine)
    finally:
        engine.dispose()
    table = Table(
        "daemon", "host", "pid", "live", "last seen", "agents", title=f"cluster · {deployment.name}"
    )
    for daemon in found:
        table.add_row(
            daemon.daemon,
            daemon.host,
            str(daemon.pid),
            "yes" if daemon.live else "gone",
            daemon.seen_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{len(daemon.agents)}: " + ", ".join(daemon.agents) if daemon.agents else "0",
        )
    console.print(table)
    names = {agent.name for agent in deployment.agents}
    unheld = sorted(name for name in names if not (name in leases and leases[name].live))
    console.print(
        f"{len(names) - len(unheld)} of {len(names)} agents held"
        + (f"; not held now: {', '.join(unheld)}" if unheld else ""),
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the `cluster` group to the main CLI."""
    app.add_typer(cluster_app, name="cluster")
