"""Serving an ASGI app from the daemon for the length of a block (the console, the A2A
endpoint): uvicorn with its signal handlers switched off, so SIGTERM still means "finish
ticks, then stop", on a socket bound before the server starts, so a taken port is a
clear error and not a log line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn

from config.errors import ConfigError

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the daemon owns SIGTERM/SIGINT."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


def bind(host: str, port: int, *, what: str, setting: str) -> socket.socket:
    """A listening socket on host:port; ConfigError naming `setting` if it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"the {what} cannot listen on {host}:{port}: {exc.strerror}; change "
            f"{setting} in the deployment file or stop what holds the port"
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serving_app(
    app: Any,
    sock: socket.socket,
    *,
    url: str,
    what: str,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> AsyncIterator[str]:
    """Serve `app` on `sock` while the block runs; yields `url`."""
    server = _Server(
        uvicorn.Config(
            app,
            log_config=None,  # the daemon configured logging; keep it
            access_log=False,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        listening = asyncio.create_task(server.listening.wait())
        await asyncio.wait([listening, task], return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        if task.done():
            task.result()  # a server that failed to start raises here
            raise ConfigError(f"the {what} at {url} stopped as it started; see the log")
        log.info("%s at %s", what, url)
        yield url
    finally:
        server.should_exit = True
        await task
        sock.close()
