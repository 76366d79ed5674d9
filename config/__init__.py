"""Deployment configuration: models, YAML loader, JSON schema, the state store and the
project's exception tree."""

from config.loader import ConfigProblem, DeploymentFileError, load_deployment
from config.models import (
    AgentConfig,
    Asset,
    Counterparty,
    Deployment,
    EmbeddedPlanner,
    EvmChain,
    OllamaPlanner,
    ScriptedPlanner,
    SolanaChain,
)

__all__ = [
    "AgentConfig",
    "Asset",
    "ConfigProblem",
    "Counterparty",
    "Deployment",
    "DeploymentFileError",
    "EmbeddedPlanner",
    "EvmChain",
    "OllamaPlanner",
    "ScriptedPlanner",
    "SolanaChain",
    "load_deployment",
]
