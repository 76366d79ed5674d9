"""CLI of other operators' agents: `peers show URL` fetches an Agent Card and says what it
proves (its DID, chain accounts and operator), or why it proves nothing."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from agents.a2a.authority import RevocationCache, verify_authority
from agents.a2a.peers import Peer, fetch_peer
from config.errors import CredentialError

console = Console(emoji=False)  # "did:key:" must print as written, not as an emoji
peers_app = typer.Typer(
    help="Other operators' agents: fetch and verify their cards.", no_args_is_help=True
)


@peers_app.command("show")
def show(
    url: Annotated[str, typer.Argument(help="The agent's A2A URL, or its card's URL.")],
    trust: Annotated[
        list[str] | None,
        typer.Option(help="An operator DID to trust (repeatable): checks the credential."),
    ] = None,
) -> None:
    """Fetch the Agent Card at URL and verify it: signature by its DID, its accounts, and
    with --trust the authority credential it presents (issuer trusted, valid now, for
    this DID, not revoked in the issuer's list fetched now)."""
    peer, credential = asyncio.run(_show(url, trust or []))
    # One fact per line, never wrapped: DIDs and accounts are copied from here.
    rows = [("card", peer.url), ("did", peer.did), ("operator", peer.operator)]
    rows += [("account", account) for account in peer.accounts]
    rows += [("skills", ", ".join(peer.skills))]
    rows += [("credential", credential)]
    console.print(f"[green]{peer.name}: card verified[/] (signed by its DID)")
    for label, value in rows:
        print(f"  {label:<10} {value}")  # plain: rich would turn "did:key:" into an emoji


async def _show(url: str, trusted: list[str]) -> tuple[Peer, str]:
    peer = await fetch_peer(url)
    if not trusted:
        return peer, "not checked (give --trust OPERATOR_DID)"
    try:
        verified = await verify_authority(peer, trusted=trusted, revocations=RevocationCache(0))
    except CredentialError as exc:
        return peer, f"REFUSED ({exc.reason}): {exc}"
    authority = verified.authority
    return peer, (
        f"valid until {verified.valid_until.isoformat()}, issued by {verified.issuer} "
        f"(trusted); chains {', '.join(authority.chains)}, assets {', '.join(authority.assets)}"
    )


def register(app: typer.Typer) -> None:
    """Add `peers` to the CLI."""
    app.add_typer(peers_app, name="peers")
