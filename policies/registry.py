"""Policies named in YAML: built-ins by name, user policies by `package.module:Class`.

`validate_deployment_policies` reports every problem with its field path
(`agents[i].policies[j]`), the agent and the policy, so `config validate` can print them
all at once; `build_policies` raises the same problems as one :class:`ConfigError`.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel, ValidationError

from config.errors import ConfigError
from config.models import AgentConfig, Deployment
from policies.base import Policy
from policies.builtin.allowlist import Allowlist
from policies.builtin.approval import HumanApproval
from policies.builtin.authority import Authority
from policies.builtin.breaker import ConfidenceBreaker
from policies.builtin.duplicates import DuplicateGuard
from policies.builtin.killswitch import KillSwitch
from policies.builtin.ratelimit import RateLimit
from policies.builtin.simulation import RequireSimulation
from policies.builtin.spend import SpendLimit
from policies.builtin.swap_rate import SwapRate

BUILTINS: dict[str, type[Policy]] = {
    cls.__name__: cls
    for cls in (
        Allowlist,
        Authority,
        ConfidenceBreaker,
        DuplicateGuard,
        HumanApproval,
        KillSwitch,
        RateLimit,
        RequireSimulation,
        SpendLimit,
        SwapRate,
    )
}


class PolicyConfigError(ConfigError):
    """An agent's policy list is invalid; `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def resolve_policy(name: str) -> type[Policy]:
    """The class for a registry name or a user policy's path, `package.module:Class`
    or `package.module.Class`."""
    if name in BUILTINS:
        return BUILTINS[name]
    if ":" in name:
        module_name, _, attribute = name.partition(":")
    elif "." in name:
        module_name, _, attribute = name.rpartition(".")
    else:
        raise ConfigError(
            f"unknown policy {name!r}; valid names: {', '.join(sorted(BUILTINS))}, or a "
            "user policy as package.module:Class"
        )
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot load the policy {name!r}: {exc}; check the module is importable "
            "(on PYTHONPATH) and defines that class"
        ) from exc
    if not (isinstance(found, type) and issubclass(found, Policy)):
        raise ConfigError(f"{name!r} is not a subclass of policies.Policy")
    return found


def validate_deployment_policies(deployment: Deployment) -> list[str]:
    """Every policy problem of every agent, each prefixed by its field path."""
    problems: list[str] = []
    for index, agent in enumerate(deployment.agents):
        problems += _agent_problems(deployment, index, agent)[1]
    return problems


def build_policies(deployment: Deployment, agent_name: str) -> list[Policy]:
    """The agent's policies, in order, with validated parameters."""
    for index, agent in enumerate(deployment.agents):
        if agent.name == agent_name:
            policies, problems = _agent_problems(deployment, index, agent)
            if problems:
                raise PolicyConfigError(problems)
            return policies
    raise ConfigError(
        f"unknown agent {agent_name!r}; the deployment defines "
        f"{[a.name for a in deployment.agents]}"
    )


def _agent_problems(
    deployment: Deployment, index: int, agent: AgentConfig
) -> tuple[list[Policy], list[str]]:
    policies: list[Policy] = []
    problems: list[str] = []
    for position, spec in enumerate(agent.policies):
        ((name, raw),) = spec.items()
        where = f"agents[{index}].policies[{position}] (agent {agent.name!r}, policy {name!r})"
        try:
            policies.append(_build_one(deployment, agent, name, raw))
        except ConfigError as exc:
            problems += [f"{where}: {line}" for line in str(exc).splitlines()]
    return policies, problems


def _build_one(
    deployment: Deployment, agent: AgentConfig, name: str, raw: dict[str, Any] | None
) -> Policy:
    cls = resolve_policy(name)
    params = _params(cls, raw or {})
    found = list(cls.problems(params, deployment, agent))
    if found:
        raise ConfigError("\n".join(found))
    return cls(params)


def _params(cls: type[Policy], raw: dict[str, Any]) -> BaseModel:
    try:
        return cls.Params.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(parameters)"
            lines.append(f"{field}: {error['msg']} (got {error.get('input')!r})")
        raise ConfigError("\n".join(lines)) from exc
