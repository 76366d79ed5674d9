"""The console's server and logins without a daemon: a real uvicorn server on loopback
over a real SQLite store, no agents.

Shows: tokens are stored only hashed; a revoked token's session ends on its next
request (negative control: the same session worked before); a port in use is a
clear error; `/readyz` says 503 and names the chain that cannot be reached
(negative control: 200 when every check passes); the cookie is Secure only with TLS.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from agents.audit import AuditLog
from agents.console import tokens
from agents.console.app import ChainCheck, Console, serving
from agents.console.metrics import ConsoleMetrics
from agents.console.views import Sources
from config.errors import ConfigError
from config.loader import load_deployment
from config.store import open_store
from tests.console._client import csrf_of
from tests.console.conftest import _free_port, demo_copy


async def _ok() -> None:
    await asyncio.sleep(0)


async def _dead() -> None:
    # A real refused connection: nothing listens on this port.
    async with httpx.AsyncClient() as client:
        await client.get(f"http://127.0.0.1:{_free_port()}/", timeout=2)


def _console(tmp_path: Path, chains: Mapping[str, ChainCheck], *, port: int) -> Console:
    deployment = load_deployment(demo_copy(tmp_path, port))
    store = open_store(deployment.store.url or "")
    assert deployment.console is not None
    sources = Sources(deployment, store, {}, lambda _agent: None, lambda _agent: None)
    return Console(
        config=deployment.console,
        sources=sources,
        audit=AuditLog(store, {}),
        metrics=ConsoleMetrics(store, [a.name for a in deployment.agents]),
        chains=chains,
        secret="test-secret-not-a-key",
    )


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Console, str]]:
    console = _console(tmp_path, {"arbitrum-local": _ok, "solana-local": _dead}, port=_free_port())
    async with serving(console) as url:
        yield console, url
    console.sources.store.dispose()


async def test_tokens_are_stored_only_as_their_hash(served: tuple[Console, str]) -> None:
    console, _url = served
    store = console.sources.store
    record, token = tokens.create_token(store, "ops")
    with store.connect() as connection:
        rows = [
            tuple(map(str, row)) for row in connection.execute(sa.select(tokens.console_tokens))
        ]
    assert not any(token in value for row in rows for value in row)
    assert tokens.token_hash(token) in rows[0]
    assert tokens.check_token(store, token) == record
    assert tokens.check_token(store, token + "x") is None


async def test_a_revoked_token_ends_its_session(served: tuple[Console, str]) -> None:
    console, url = served
    _record, token = tokens.create_token(console.sources.store, "ops")
    async with httpx.AsyncClient(base_url=url) as client:
        csrf = csrf_of((await client.get("/login")).text)
        login = await client.post("/login", data={"csrf": csrf, "token": token})
        assert login.status_code == 303
        assert "secure" not in login.headers["set-cookie"].lower()  # plain HTTP on loopback
        assert (await client.get("/approvals")).status_code == 200  # negative control
        tokens.revoke_token(console.sources.store, _record.id)
        assert (await client.get("/approvals")).status_code == 303  # back to /login
        assert (await client.get("/fragments/overview")).status_code == 401
        csrf = csrf_of((await client.get("/login")).text)
        relogin = await client.post("/login", data={"csrf": csrf, "token": token})
        assert relogin.status_code == 401


async def test_readiness_names_the_unreachable_chain(served: tuple[Console, str]) -> None:
    url = served[1]
    async with httpx.AsyncClient(base_url=url) as client:
        reply = await client.get("/readyz")
    assert reply.status_code == 503
    checks = reply.json()["checks"]
    assert checks["store"] == "ok"
    assert checks["chain arbitrum-local"] == "ok"
    assert checks["chain solana-local"].startswith("unreachable: ConnectError")


async def test_readiness_is_200_when_every_check_passes(tmp_path: Path) -> None:
    console = _console(tmp_path, {"arbitrum-local": _ok}, port=_free_port())
    async with serving(console) as url, httpx.AsyncClient(base_url=url) as client:
        reply = await client.get("/readyz")
    console.sources.store.dispose()
    assert reply.status_code == 200
    assert reply.json() == {"ready": True, "checks": {"store": "ok", "chain arbitrum-local": "ok"}}


async def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        console = _console(tmp_path, {}, port=taken.getsockname()[1])
        with pytest.raises(
            ConfigError, match=r"cannot listen on 127\.0\.0\.1:\d+.*console\.listen"
        ):
            async with serving(console):
                pass
    console.sources.store.dispose()


def test_the_session_cookie_is_secure_with_tls(tmp_path: Path) -> None:
    from agents.console.app import build_app

    console = _console(tmp_path, {}, port=_free_port())
    tls = console.config.model_copy(update={"tls_cert": "c.pem", "tls_key": "k.pem"})
    for config, secure in ((console.config, False), (tls, True)):
        app = build_app(Console(config, console.sources, console.audit, console.metrics, {}, "s"))
        session = next(m for m in app.user_middleware if m.kwargs.get("same_site"))
        assert session.kwargs["https_only"] is secure
        assert session.kwargs["same_site"] == "strict"
    console.sources.store.dispose()


def test_the_cli_prints_a_token_once_that_logs_in(tmp_path: Path, capsys) -> None:
    import main

    file = demo_copy(tmp_path, _free_port())
    assert main.main(["console", "token", "create", str(file), "--label", "alice"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    store = open_store(load_deployment(file).store.url or "")
    try:
        assert token.startswith(tokens.PREFIX)
        assert tokens.check_token(store, token) is not None
        assert main.main(["console", "token", "list", str(file)]) == 0
        listed = capsys.readouterr().out
        assert "alice" in listed
        assert token not in listed
    finally:
        store.dispose()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.2"])
async def test_a_foreign_host_header_is_refused(served: tuple[Console, str], host: str) -> None:
    # What a DNS-rebound page sends: its own name, resolved to this loopback address.
    async with httpx.AsyncClient(base_url=served[1]) as client:
        for path in ("/healthz", "/login", "/metrics"):
            reply = await client.get(path, headers={"host": host})
            assert reply.status_code == 400, path
            assert reply.headers["x-frame-options"] == "DENY"  # still every header


async def test_the_listen_host_localhost_and_public_names_are_answered(tmp_path: Path) -> None:
    console = _console(tmp_path, {}, port=_free_port())
    config = console.config.model_copy(update={"public_names": ["console.example"]})
    public = Console(config, console.sources, console.audit, console.metrics, {}, "s")
    port = console.config.port
    async with serving(public) as url, httpx.AsyncClient(base_url=url) as client:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "console.example", "LOCALHOST"):
            assert (await client.get("/healthz", headers={"host": host})).status_code == 200
        assert (await client.get("/healthz", headers={"host": "other.example"})).status_code == 400
    console.sources.store.dispose()


async def test_metrics_need_a_login_by_default(served: tuple[Console, str]) -> None:
    console, url = served
    _record, token = tokens.create_token(console.sources.store, "ops")
    async with httpx.AsyncClient(base_url=url) as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert "metrics_public" in refused.text
        assert "covenant_" not in refused.text
        csrf = csrf_of((await client.get("/login")).text)
        assert (await client.post("/login", data={"csrf": csrf, "token": token})).is_redirect
        # Negative control: the same request with a session is served.
        served_metrics = await client.get("/metrics")
    assert served_metrics.status_code == 200
    assert "covenant_ticks" in served_metrics.text


async def test_metrics_public_serves_them_without_a_login(tmp_path: Path) -> None:
    console = _console(tmp_path, {}, port=_free_port())
    config = console.config.model_copy(update={"metrics_public": True})
    public = Console(config, console.sources, console.audit, console.metrics, {}, "s")
    async with serving(public) as url, httpx.AsyncClient(base_url=url) as client:
        reply = await client.get("/metrics")
        page = await client.get("/approvals")  # only /metrics: pages still need a login
    console.sources.store.dispose()
    assert reply.status_code == 200
    assert "covenant_ticks" in reply.text
    assert page.status_code == 303
