"""`doctor`: check that a deployment's outside world answers as configured.

Each check is independent and returns a :class:`CheckResult`; one failing check never
hides another. Network checks are plain JSON-RPC / HTTP calls with a short timeout, so
the report says exactly which endpoint failed and how.
"""

from __future__ import annotations

import asyncio
import functools
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from agents.planners import build_planner
from chains.families import family_of_chain
from config.chain_model import ChainModel
from config.errors import CovenantError
from config.models import Deployment
from config.models import Planner as PlannerConfig
from config.store import open_store

Status = Literal["ok", "fail", "skip"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one doctor check."""

    check: str
    target: str
    status: Status
    detail: str


async def run_checks(deployment: Deployment, timeout: float = 5.0) -> list[CheckResult]:
    """Run every check concurrently; the order of results follows the deployment."""
    async with httpx.AsyncClient(timeout=timeout) as client:
        chain_checks = [_check_chain(client, chain) for chain in deployment.chains]
        planner_checks = [_check_planner(deployment, planner) for planner in deployment.planners]
        results = await asyncio.gather(*chain_checks, *planner_checks)
    return [*results, _check_keystore(deployment), _check_store(deployment)]


async def _rpc(client: httpx.AsyncClient, url: str, method: str) -> Any:
    response = await client.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": []}
    )
    response.raise_for_status()
    body = response.json()
    if "error" in body:
        raise ValueError(f"{method} returned error {body['error']}")
    return body["result"]


async def _check_chain(client: httpx.AsyncClient, chain: ChainModel) -> CheckResult:
    name = f"chain {chain.name}"
    if chain.rpc == "local":
        return CheckResult(
            name, "local", "skip", "local chain: started by `devnet up` or in-process"
        )
    rpc = functools.partial(_rpc, client, chain.rpc)
    try:
        status, detail = await family_of_chain(chain).doctor_check(chain, rpc)
        return CheckResult(name, chain.rpc, status, detail)
    except httpx.TimeoutException:
        detail = "no answer (timed out); check the URL and that the node is running"
    except httpx.TransportError as exc:
        detail = f"unreachable ({exc.__class__.__name__}: {exc}); check the URL and network"
    except (httpx.HTTPStatusError, ValueError, KeyError, TypeError) as exc:
        detail = f"not a working JSON-RPC endpoint: {exc}"
    return CheckResult(name, chain.rpc, "fail", detail)


async def _check_planner(deployment: Deployment, config: PlannerConfig) -> CheckResult:
    """The planner's own check (Ollama: the server has the model; embedded: the model
    loads), run on the planner of the first agent that uses it."""
    name = f"planner {config.name} ({config.kind})"
    target = getattr(config, "base_url", None) or getattr(config, "model_path", None) or "-"
    user = next((agent for agent in deployment.agents if agent.planner == config.name), None)
    if user is None:
        return CheckResult(name, target, "skip", "no agent uses it")
    planner = build_planner(deployment, user.name)
    try:
        await planner.check()
    except CovenantError as exc:
        return CheckResult(name, target, "fail", str(exc))
    finally:
        await planner.aclose()
    return CheckResult(name, target, "ok", "ready")


def _check_keystore(deployment: Deployment) -> CheckResult:
    path = Path(deployment.operator.keystore or ".")
    if not path.is_dir():
        return CheckResult(
            "keystore",
            str(path),
            "fail",
            "missing; run `python main.py keys init FILE` to create it",
        )
    for file in sorted(path.iterdir()):
        if not os.access(file, os.R_OK):
            return CheckResult("keystore", str(file), "fail", "not readable by this user")
        if file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            return CheckResult(
                "keystore", str(file), "fail", f"readable by others; run `chmod 600 {file}`"
            )
    return CheckResult("keystore", str(path), "ok", "readable, private")


def _check_store(deployment: Deployment) -> CheckResult:
    url = deployment.store.url or ""
    try:
        engine = open_store(url)
        with engine.begin() as connection:
            connection.execute(text("CREATE TEMPORARY TABLE doctor_probe (x INTEGER)"))
            connection.execute(text("INSERT INTO doctor_probe VALUES (1)"))
            connection.execute(text("DROP TABLE doctor_probe"))
        engine.dispose()
    except CovenantError as exc:
        return CheckResult("store", engine_label(url), "fail", str(exc))
    except Exception as exc:  # any driver failure is a failed check
        return CheckResult("store", engine_label(url), "fail", f"not writable: {exc}")
    return CheckResult("store", engine_label(url), "ok", "migrated and writable")


def engine_label(url: str) -> str:
    """The store URL without a password, for display."""
    return make_url(url).render_as_string(hide_password=True) if url else "(none)"
