"""Deployment configuration: models, YAML loader, JSON schema, the state store and the
project's exception tree.

The names below load on first use: every package imports something of ``config``, and
the chain-family registry (``chains.families``) imports ``config.chain_model`` before
:mod:`config.models`, which builds its chain union from that registry, can be built.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config.loader import ConfigProblem, DeploymentFileError, load_deployment
    from config.models import (
        AgentConfig,
        Asset,
        Counterparty,
        Deployment,
        EmbeddedPlanner,
        OllamaPlanner,
        ScriptedPlanner,
    )

_HOMES = {
    **dict.fromkeys(("ConfigProblem", "DeploymentFileError", "load_deployment"), "config.loader"),
    **dict.fromkeys(
        (
            "AgentConfig",
            "Asset",
            "Counterparty",
            "Deployment",
            "EmbeddedPlanner",
            "OllamaPlanner",
            "ScriptedPlanner",
        ),
        "config.models",
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'config' has no attribute {name!r}")
    return getattr(import_module(home), name)


__all__ = [
    "AgentConfig",
    "Asset",
    "ConfigProblem",
    "Counterparty",
    "Deployment",
    "DeploymentFileError",
    "EmbeddedPlanner",
    "OllamaPlanner",
    "ScriptedPlanner",
    "load_deployment",
]
