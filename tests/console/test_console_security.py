"""The console's security checks against the running demo daemon, over real HTTP.

Each refusal has its negative control: the same request done right succeeds.
"""

from __future__ import annotations

import json
import secrets

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents import audit
from agents.console.auth import CSP
from config.loader import load_deployment
from config.store import open_store
from policies import control
from tests.console._client import csrf_of, logged_in
from tests.console.conftest import DemoDaemon, cli

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


def test_every_response_forbids_framing_and_foreign_content(demo_daemon: DemoDaemon) -> None:
    for path in ("/login", "/healthz", "/metrics", "/"):
        headers = httpx.get(demo_daemon.url + path).headers
        assert headers["content-security-policy"] == CSP
        assert "default-src 'self'" in CSP
        assert "frame-ancestors 'none'" in CSP
        assert headers["x-frame-options"] == "DENY"


def test_pages_need_a_login_and_a_wrong_token_gets_none(demo_daemon: DemoDaemon) -> None:
    with httpx.Client(base_url=demo_daemon.url) as client:
        assert client.get("/approvals").status_code == 303  # to /login
        csrf = csrf_of(client.get("/login").text)
        wrong = client.post("/login", data={"csrf": csrf, "token": "cvt_not-a-token"})
        assert wrong.status_code == 401
        assert client.get("/approvals").status_code == 303
        # Negative control: the token the CLI printed logs in.
        right = client.post("/login", data={"csrf": csrf, "token": demo_daemon.token})
        assert right.status_code == 303
        cookie = right.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert demo_daemon.token not in right.headers["set-cookie"]
        assert client.get("/approvals").status_code == 200


def test_a_post_without_or_with_a_wrong_csrf_token_changes_nothing(
    demo_daemon: DemoDaemon,
) -> None:
    deployment = load_deployment(demo_daemon.file)
    store = open_store(deployment.store.url or "")
    try:
        with logged_in(demo_daemon.url, demo_daemon.token) as client:
            csrf = csrf_of(client.get("/").text)
            missing = client.post("/agents/payer/halt", data={})
            wrong = client.post("/agents/payer/halt", data={"csrf": csrf[::-1]})
            assert (missing.status_code, wrong.status_code) == (403, 403)
            assert "CSRF" in missing.text
            assert "payer" not in {h.target for h in control.halts(store)}

            # Negative control: the page's own token is accepted, and the halt happens.
            right = client.post("/agents/payer/halt", data={"csrf": csrf})
            assert right.status_code == 303
            assert "payer" in {h.target for h in control.halts(store)}
            assert "halted" in client.get("/fragments/overview").text
            assert client.post("/agents/payer/resume", data={"csrf": csrf}).status_code == 303
            assert "payer" not in {h.target for h in control.halts(store)}
        # Both console actions are in the payer's signed log, which still verifies.
        entries = [r.body["console"] for r in audit.entries(store, "payer") if "console" in r.body]
        assert [e["action"] for e in entries][-2:] == ["halt", "resume"]
        assert audit.verify(store, "payer").ok
        shown = cli("audit", "show", str(demo_daemon.file), "payer", "--last", "5")
        assert "console" in shown
        assert "resume" in shown
    finally:
        store.dispose()


def test_a_post_without_a_session_is_refused(demo_daemon: DemoDaemon) -> None:
    with httpx.Client(base_url=demo_daemon.url) as client:
        csrf = csrf_of(client.get("/login").text)  # a real anonymous session's token
        assert client.post("/all/halt", data={"csrf": csrf}).status_code == 401


def test_an_approval_is_refused_for_a_digest_other_than_its_own(
    demo_daemon: DemoDaemon,
) -> None:
    with logged_in(demo_daemon.url, demo_daemon.token) as client:
        page = client.get("/approvals").text
        csrf = csrf_of(page)
        reply = client.post("/approvals/nosuchid/approve", data={"csrf": csrf, "digest": "00" * 32})
        assert reply.status_code == 409
        assert "no approval request" in reply.text


def test_halt_all_and_resume_all_reach_every_agent_and_every_log(demo_daemon: DemoDaemon) -> None:
    deployment = load_deployment(demo_daemon.file)
    store = open_store(deployment.store.url or "")
    try:
        with logged_in(demo_daemon.url, demo_daemon.token) as client:
            csrf = csrf_of(client.get("/").text)
            assert client.post("/all/halt", data={"csrf": csrf}).status_code == 303
            assert control.GLOBAL in {h.target for h in control.halts(store)}
            overview = client.get("/fragments/overview").text
            assert overview.count("halted: halted in the console") == 3
            assert client.post("/all/resume", data={"csrf": csrf}).status_code == 303
            assert control.GLOBAL not in {h.target for h in control.halts(store)}
            # Resuming what is not halted is refused, saying so.
            again = client.post("/all/resume", data={"csrf": csrf})
            assert again.status_code == 409
            assert "not halted" in again.text
        for agent in ("payer", "maker", "taker"):
            actions = [
                r.body["console"]["action"]
                for r in audit.entries(store, agent)
                if "console" in r.body
            ]
            assert actions[-2:] == ["halt-all", "resume-all"]
            assert audit.verify(store, agent).ok
    finally:
        store.dispose()


def _login_failures(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "covenant_console_login_failures_total"
        and sample.labels == {"source": "127.0.0.1"}
    )


def test_logins_refused_logins_and_logouts_are_in_every_log_without_the_token(
    demo_daemon: DemoDaemon,
) -> None:
    store = open_store(load_deployment(demo_daemon.file).store.url or "")
    wrong = "cvt_" + secrets.token_urlsafe(24)
    try:
        with logged_in(demo_daemon.url, demo_daemon.token) as watcher:
            failures = _login_failures(watcher)
            with httpx.Client(base_url=demo_daemon.url) as client:
                csrf = csrf_of(client.get("/login").text)
                refused = client.post("/login", data={"csrf": csrf, "token": wrong})
                assert refused.status_code == 401
                assert _login_failures(watcher) == failures + 1
                right = client.post("/login", data={"csrf": csrf, "token": demo_daemon.token})
                assert right.status_code == 303
                assert _login_failures(watcher) == failures + 1  # a login is no failure
                csrf = csrf_of(client.get("/").text)
                assert client.post("/logout", data={"csrf": csrf}).status_code == 303
                assert client.get("/approvals").status_code == 303  # logged out
        for agent in ("payer", "maker", "taker"):
            bodies = [r.body for r in audit.entries(store, agent)]
            console = [b["console"] for b in bodies if "console" in b]
            # The watcher's login, then the second client's three actions.
            actions = [e["action"] for e in console][-4:]
            assert actions == ["login", "login-refused", "login", "logout"]
            _watcher, refused_entry, login, logout = console[-4:]
            assert refused_entry == {"action": "login-refused", "source": "127.0.0.1"}
            assert login["by"].startswith("console token ")
            assert (login["source"], logout["by"]) == ("127.0.0.1", login["by"])
            written = json.dumps(bodies)
            assert wrong not in written
            assert demo_daemon.token not in written
            assert audit.verify(store, agent).ok
    finally:
        store.dispose()
