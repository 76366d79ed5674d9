"""Observation sources: where an agent finds tasks (`sources:` of an agent in YAML).

Adding a source is one module with a :class:`~agents.sources.base.Source` subclass and one
line in :data:`SOURCES`. Problems are reported with their field path
(``agents[i].sources[j]``), like the policies', so `config validate` prints their lines.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from agents.sources.base import Source, SourceError, SourceRead
from agents.sources.http_inbox import HttpInbox
from agents.sources.task_file import TaskFile
from config.errors import ConfigError
from config.models import AgentConfig, Deployment

SOURCES: dict[str, type[Source[Any]]] = {"TaskFile": TaskFile, "HttpInbox": HttpInbox}


def build_sources(agent: AgentConfig) -> list[Source[Any]]:
    """The agent's sources with validated parameters; ConfigError lists every problem."""
    sources, problems = _sources(agent, f"agent {agent.name!r}")
    if problems:
        raise ConfigError("\n".join(problems))
    return sources


def validate_deployment_sources(deployment: Deployment) -> list[str]:
    """Every source problem of every agent, each starting with its field path."""
    return [
        problem
        for index, agent in enumerate(deployment.agents)
        for problem in _sources(agent, f"agents[{index}]")[1]
    ]


def _sources(agent: AgentConfig, where: str) -> tuple[list[Source[Any]], list[str]]:
    sources: list[Source[Any]] = []
    problems: list[str] = []
    for position, spec in enumerate(agent.sources):
        ((name, raw),) = spec.items()
        at = f"{where}.sources[{position}]" if where.startswith("agents[") else where
        try:
            sources.append(_build(name, raw or {}))
        except ConfigError as exc:
            problems += [f"{at}.{name}: {line}" for line in str(exc).splitlines()]
    return sources, problems


def _build(name: str, raw: dict[str, Any]) -> Source[Any]:
    cls = SOURCES.get(name)
    if cls is None:
        raise ConfigError(f"unknown source; valid names: {', '.join(sorted(SOURCES))}")
    try:
        return cls(name, cls.Params.model_validate(raw))
    except ValidationError as exc:
        raise ConfigError(
            "\n".join(
                f"{'.'.join(str(p) for p in error['loc']) or '(parameters)'}: {error['msg']}"
                for error in exc.errors()
            )
        ) from exc


__all__ = [
    "SOURCES",
    "Source",
    "SourceError",
    "SourceRead",
    "build_sources",
    "validate_deployment_sources",
]
