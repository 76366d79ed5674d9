"""Planners: turn an :class:`Observation` into a :class:`PlanResult`.

Backends: :mod:`~agents.planners.ollama` (LangChain ``ChatOllama``),
:mod:`~agents.planners.embedded` (llama.cpp in-process) and
:mod:`~agents.planners.scripted` (plans from YAML). :func:`build_planner` picks one from
the deployment.
"""

from __future__ import annotations

from agents.planners.base import ModelPlanner, Planner
from agents.planners.types import Observation, PlanResult
from config.models import Deployment, EmbeddedPlanner, OllamaPlanner
from config.models import ScriptedPlanner as ScriptedPlannerConfig

__all__ = ["ModelPlanner", "Observation", "PlanResult", "Planner", "build_planner"]


def build_planner(deployment: Deployment, agent_name: str) -> Planner:
    """The planner the deployment configures for `agent_name` (one instance per agent)."""
    agent = deployment.agent(agent_name)
    config = next(p for p in deployment.planners if p.name == agent.planner)
    if isinstance(config, ScriptedPlannerConfig):
        from agents.planners.scripted import ScriptedPlanner

        return ScriptedPlanner(config, deployment, agent_name)
    if isinstance(config, OllamaPlanner):
        from agents.planners.ollama import OllamaPlanner as Ollama

        return Ollama(config, deployment, agent_name)
    assert isinstance(config, EmbeddedPlanner)
    from agents.planners.embedded import EmbeddedPlanner as Embedded

    return Embedded(config, deployment, agent_name)
