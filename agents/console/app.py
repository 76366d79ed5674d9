"""The console's Starlette application and its uvicorn server inside the daemon.

:func:`serving` binds the socket first (a port in use is a clear error before any agent
ticks), runs `uvicorn.Server.serve()` as a task of the daemon's own event loop and stops
it when the daemon stops. The daemon keeps its own signal handling: the server's is
switched off (:mod:`agents.http_serving`), so SIGTERM still means "finish ticks, then stop".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from agents.audit import AuditLog
from agents.console import auth
from agents.console.metrics import CONTENT_TYPE, ConsoleMetrics
from agents.console.pages import Pages
from agents.console.views import Sources
from agents.http_serving import bind, serving_app
from config.models import ConsoleConfig

log = logging.getLogger(__name__)

READY_TIMEOUT = 5.0
"""Seconds `/readyz` waits for the store and for each chain."""

ChainCheck = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Console:
    """What the console serves from: the read sources, the audit log it records
    operator actions in, the metrics, and one reachability check per chain."""

    config: ConsoleConfig
    sources: Sources
    audit: AuditLog
    metrics: ConsoleMetrics
    chains: Mapping[str, ChainCheck]
    secret: str
    """Signs session cookies; made at start-up and never stored."""


def build_app(console: Console) -> Starlette:
    """The ASGI application: pages, actions, `/metrics`, `/healthz`, `/readyz`."""
    pages = Pages(console.sources, console.audit, console.metrics)

    async def metrics(request: Request) -> Response:
        public = console.config.metrics_public
        if not public and auth.operator(request, console.sources.store) is None:
            return PlainTextResponse(
                "log in first (/login), or set console.metrics_public: true in the "
                "deployment file for a scraper on this host",
                status_code=401,
            )
        return Response(console.metrics.render(), media_type=CONTENT_TYPE)

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_request: Request) -> Response:
        checks = await _readiness(console)
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    static = StaticFiles(directory=str(Path(__file__).parent / "static"))
    routes = [
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/static", static, name="static"),
        *pages.routes(),
    ]
    middleware = [
        Middleware(auth.SecurityHeaders),
        # Before anything reads the request: a page on another name that DNS rebinding
        # pointed at this address sends its own Host, and is refused (400) here.
        Middleware(TrustedHostMiddleware, allowed_hosts=console.config.allowed_hosts),
        Middleware(
            SessionMiddleware,
            secret_key=console.secret,
            session_cookie=auth.SESSION_COOKIE,
            max_age=int(console.config.session_lifetime),
            same_site="strict",
            https_only=console.config.tls_cert is not None,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware)


async def _readiness(console: Console) -> dict[str, str]:
    """ "ok" or what failed, for the store and each chain."""
    checks: dict[str, str] = {}
    try:
        with console.sources.store.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        checks["store"] = "ok"
    except sa.exc.SQLAlchemyError as exc:
        checks["store"] = f"unreachable: {type(exc).__name__}"
    for name, check in console.chains.items():
        try:
            await asyncio.wait_for(check(), READY_TIMEOUT)
            checks[f"chain {name}"] = "ok"
        except Exception as exc:  # any failure means not ready; say which
            checks[f"chain {name}"] = f"unreachable: {type(exc).__name__}: {exc}"[:200]
    return checks


@contextlib.asynccontextmanager
async def serving(console: Console) -> AsyncIterator[str]:
    """Serve the console while the block runs; yields its base URL."""
    config = console.config
    sock = bind(config.host, config.port, what="console", setting="console.listen")
    url = f"{'https' if config.tls_cert is not None else 'http'}://{config.listen}"
    async with serving_app(
        build_app(console),
        sock,
        url=url,
        what="console",
        tls_cert=config.tls_cert,
        tls_key=config.tls_key,
    ) as served:
        yield served
