"""CLI: ``devnet up | down | status | price FILE`` for the deployment's `rpc: local` chains."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chains.devnet import manager
from config.loader import load_deployment
from config.models import Deployment

console = Console(emoji=False, highlight=False)
devnet_app = typer.Typer(
    help="Local chains: one anvil per local EVM chain id, a LiteSVM Solana RPC server.",
    no_args_is_help=True,
)

FundOption = Annotated[
    list[str] | None,
    typer.Option(
        "--fund",
        help="Also fund this address (0x… on EVM chains, base58 on Solana); repeat for several.",
    ),
]
PassphraseOption = Annotated[
    Path | None,
    typer.Option(help="Keystore passphrase file, to derive and fund every agent's accounts."),
]


@devnet_app.command("up")
def up(file: Path, fund: FundOption = None, passphrase_file: PassphraseOption = None) -> None:
    """Start the local chains of FILE (if not running), fund the agents, print the URLs."""
    deployment = load_deployment(file)
    addresses = [*(fund or []), *_agent_addresses(deployment, passphrase_file)]
    state = asyncio.run(manager.up(deployment, fund=addresses))
    table = Table("chain", "kind", "url", "pid", title=f"devnet {deployment.name}")
    for node in state.nodes.values():
        table.add_row(node.chain, node.kind, node.url, str(node.pid))
    console.print(table)
    console.print(f"funded {len(addresses)} address(es) on each chain of their family")


def _agent_addresses(deployment: Deployment, passphrase_file: Path | None) -> list[str]:
    try:
        from wallets.operator import keystore_for, open_wallets
        from wallets.passphrase import resolve_passphrase
    except ImportError:
        return []
    if not deployment.agents or not keystore_for(deployment).exists():
        console.print(
            "[yellow]no keystore yet: agents not funded (run `keys init`, or pass "
            "--fund ADDRESS)[/]"
        )
        return []
    from config.store import open_store

    engine = open_store(deployment.store.url or "")
    try:
        wallets = open_wallets(deployment, engine, resolve_passphrase(deployment, passphrase_file))
    finally:
        engine.dispose()
    return sorted(
        {
            wallets.agent(agent.name).address(deployment, chain)
            for agent in deployment.agents
            for chain in agent.chains
        }
    )


@devnet_app.command("price")
def price(
    file: Path,
    symbol: str,
    value: str,
    age: Annotated[
        int, typer.Option(help="Publish the price as this many seconds old (0: now).")
    ] = 0,
) -> None:
    """Move the local price feeds of SYMBOL in FILE to VALUE USD (a decimal, e.g. 3500)."""
    from chains.devnet.prices import set_price
    from config.clock import to_us, utc_now

    try:
        usd = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not a decimal price such as 3500.25") from None
    deployment = load_deployment(file)
    when = to_us(utc_now()) // 1_000_000 - age
    for chain, address in asyncio.run(set_price(deployment, symbol, usd, when)):
        console.print(f"{symbol} = ${usd} on {chain} ({address})")


@devnet_app.command("down")
def down(file: Path) -> None:
    """Stop the local chains of FILE (anvil saves its state first)."""
    stopped = manager.down(load_deployment(file))
    console.print(f"stopped {', '.join(stopped)}" if stopped else "no local chain was running")


@devnet_app.command("status")
def status(file: Path) -> None:
    """Which local chains of FILE run, and where."""
    table = Table("chain", "kind", "url", "pid", "state")
    for chain, node, running in manager.status(load_deployment(file)):
        state = "[green]running[/]" if running else "[red]stopped[/]"
        table.add_row(
            chain,
            node.kind if node else "-",
            node.url if node else "-",
            str(node.pid) if node else "-",
            state,
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the `devnet` command group to the main CLI."""
    app.add_typer(devnet_app, name="devnet")
