"""Wiring of the operator's console and alerts into a run: read sources, metrics and chain
checks from the runtime; the console's server and the webhook deliverer for the length
of the run."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from agents.app.runtime import Runtime
from agents.console.alerts import Alerts
from agents.console.app import Console, serving
from agents.console.metrics import ConsoleMetrics
from agents.console.views import Sources


def console_of(runtime: Runtime) -> Console | None:
    """The console of `runtime`'s deployment (None if it configures none); its metrics
    are fed from here on by the runtime's tick hook, each adapter's RPC error hook and
    the audit log's commit hook."""
    config = runtime.deployment.console
    if config is None:
        return None
    metrics = ConsoleMetrics(runtime.store, [a.name for a in runtime.deployment.agents])
    runtime.tick_hooks.append(metrics.observe_tick)
    runtime.audit.commit_hooks.append(metrics.observe_audit_commit)
    for adapter in runtime.adapters.values():
        adapter.rpc_error_hook = metrics.observe_rpc_error

    sources = Sources(
        deployment=runtime.deployment,
        store=runtime.store,
        agents=runtime.agents,
        next_tick=lambda agent: runtime.scheduler.next_tick(agent) if runtime.scheduler else None,
        did_of=lambda agent: runtime.wallets.agent(agent).did if agent in runtime.agents else None,
    )
    return Console(
        config=config,
        sources=sources,
        audit=runtime.audit,
        metrics=metrics,
        chains={name: adapter.height for name, adapter in runtime.adapters.items()},
        secret=secrets.token_urlsafe(32),
    )


@asynccontextmanager
async def console_running(runtime: Runtime) -> AsyncIterator[str | None]:
    """Serve the console (if configured) and deliver webhook alerts (if any) while the
    block runs; yields the console's URL or None."""
    async with _alerts_running(runtime):
        console = console_of(runtime)
        if console is None:
            yield None
            return
        async with serving(console) as url:
            yield url


@asynccontextmanager
async def _alerts_running(runtime: Runtime) -> AsyncIterator[None]:
    hooks = runtime.deployment.webhooks
    if not hooks:
        yield
        return
    chains = {name: adapter.height for name, adapter in runtime.adapters.items()}
    alerts = Alerts(
        list(hooks),
        runtime.store,
        chains,
        audits=lambda: [runtime.audit.verify(name) for name in runtime.agents],
    )
    stop = asyncio.Event()
    task = asyncio.create_task(alerts.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task
