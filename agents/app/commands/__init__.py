"""Command groups of the `covenant` CLI, one module per group; each has ``register(app)``."""

from agents.app.commands import (
    agents,
    chains,
    cluster,
    config,
    console,
    offers,
    peers,
    policies,
    swaps,
    wallets,
)

COMMAND_GROUPS = (
    config,
    wallets,
    chains,
    swaps,
    peers,
    offers,
    policies,
    agents,
    console,
    cluster,
)
"""In the order `covenant --help` lists them."""
