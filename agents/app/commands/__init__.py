"""Command groups of the `covenant` CLI, one module per group; each has ``register(app)``."""

from agents.app.commands import agents, chains, config, console, policies, swaps, wallets

COMMAND_GROUPS = (config, wallets, chains, swaps, policies, agents, console)
"""In the order `covenant --help` lists them."""
