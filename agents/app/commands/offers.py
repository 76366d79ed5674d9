"""CLI of the offers other operators' agents sent: `offers list FILE`, from the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agents.a2a.store import MessageStore
from config.loader import load_deployment
from config.store import open_store

console = Console(emoji=False)  # "did:key:" must print as written, not as an emoji
offers_app = typer.Typer(help="Offers received over A2A (signed, untrusted).", no_args_is_help=True)


@offers_app.command("list")
def list_offers(
    file: Annotated[Path, typer.Argument(help="The deployment YAML file.")],
    agent: Annotated[str | None, typer.Option(help="Only this agent's.")] = None,
) -> None:
    """Every signed offer an agent accepted into its inbox, oldest first, and how many
    messages it refused from each sender (with the reasons)."""
    deployment = load_deployment(file)
    engine = open_store(deployment.store.url or "")
    try:
        store = MessageStore(engine)
        offers = store.messages(agent=agent, kind="offer")
        names = [agent] if agent else [a.name for a in deployment.agents]
        refusals = {name: store.refusals(name) for name in names}
    finally:
        engine.dispose()
    if not offers:
        print("no offers received")
    for offer in offers:
        expires = datetime.fromtimestamp(offer.expires_at, UTC).isoformat(timespec="seconds")
        print(
            f"{offer.agent}  {offer.message_id}  from {offer.sender}  plan {offer.plan}  "
            f"expires {expires}"
        )
    for name, counted in refusals.items():
        for (sender, reason), count in sorted(counted.items()):
            print(f"{name}  refused {count} from {sender}: {reason}")


def register(app: typer.Typer) -> None:
    """Add `offers` to the CLI."""
    app.add_typer(offers_app, name="offers")
