"""CLI of the operator's console: `console token create | list | revoke`.

The token is printed once, on stdout, and stored only as its SHA-256; a lost token is
revoked and replaced, never recovered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine as SqlEngine

from agents.console import tokens
from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store

console = Console(emoji=False)  # "did:key:" must print as written, not as an emoji
console_app = typer.Typer(help="The operator's web console: login tokens.", no_args_is_help=True)
token_app = typer.Typer(help="Create, list and revoke console tokens.", no_args_is_help=True)
console_app.add_typer(token_app, name="token")

File = Annotated[Path, typer.Argument(help="The deployment YAML file.")]


@contextmanager
def _store(file: Path) -> Iterator[tuple[Deployment, SqlEngine]]:
    deployment = load_deployment(file)
    engine = open_store(deployment.store.url or "")
    try:
        yield deployment, engine
    finally:
        engine.dispose()


@token_app.command("create")
def token_create(
    file: File,
    label: Annotated[str, typer.Option(help="Whose token this is, for the list.")] = "operator",
) -> None:
    """Print a new console token (shown only now) and store its hash."""
    with _store(file) as (deployment, engine):
        record, token = tokens.create_token(engine, label)
    where = deployment.console.listen if deployment.console else "(console: is not configured)"
    # stdout carries the token alone on its line, so a script can take it with `tail -1`.
    console.print(
        f"console token {record.id} ({label}) for {where}; it is shown only now:",
        highlight=False,
    )
    print(token)


@token_app.command("list")
def token_list(file: File) -> None:
    """List console tokens (ids and labels; the tokens themselves are not stored)."""
    with _store(file) as (_, engine):
        records = tokens.list_tokens(engine)
    table = Table("id", "label", "created", "revoked")
    for record in records:
        revoked = record.revoked_at.isoformat(timespec="seconds") if record.revoked_at else ""
        table.add_row(
            record.id, record.label, record.created_at.isoformat(timespec="seconds"), revoked
        )
    console.print(table if records else "no console tokens")


@token_app.command("revoke")
def token_revoke(file: File, token_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Revoke token ID: its sessions end on their next request."""
    with _store(file) as (_, engine):
        tokens.revoke_token(engine, token_id)
    console.print(f"[red]revoked[/] console token {token_id}")


def register(app: typer.Typer) -> None:
    """Add the `console` command group."""
    app.add_typer(console_app, name="console")
