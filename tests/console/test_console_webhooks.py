"""Webhook alerts across a daemon restart: a receiver on loopback gets each alert once,
with a valid HMAC signature, although the daemon is stopped while deliveries are
still failing and started again.

The receiver takes the first event it sees and refuses (503) every other one until the
daemon has been restarted; then it takes everything. So one event is delivered before
the restart and must not come again, and the others are delivered after it, once each.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from agents.console import outbox
from agents.console.alerts import SIGNATURE_HEADER, signature_ok
from config.loader import load_deployment
from config.store import open_store
from tests.console.conftest import _free_port, demo_copy, running_daemon

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
SECRET = "webhook-test-shared-secret"
WAIT = 150.0


class Receiver(http.server.ThreadingHTTPServer):
    """Records every POST; takes the first event id, refuses others until `open_all`."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.attempts: list[str] = []
        self.taken: list[tuple[str, bytes, dict[str, str]]] = []
        self.open_all = False
        self.lock = threading.Lock()

    def decide(self, event_id: str) -> bool:
        with self.lock:
            self.attempts.append(event_id)
            return self.open_all or not self.taken


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        event_id = self.headers["X-Covenant-Event-Id"]
        take = self.server.decide(event_id)
        if take:
            with self.server.lock:
                self.server.taken.append((event_id, body, dict(self.headers)))
        self.send_response(200 if take else 503)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _with_webhook(file: Path, url: str) -> None:
    data = yaml.safe_load(file.read_text())
    data["webhooks"] = [
        {"url": url, "events": ["approval_waiting"], "secret_env": "COVENANT_TEST_HOOK_SECRET"}
    ]
    file.write_text(yaml.safe_dump(data, sort_keys=False))


def _until(what: str, check: object) -> None:
    deadline = time.monotonic() + WAIT
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _undelivered(file: Path) -> int:
    store = open_store(load_deployment(file).store.url or "")
    try:
        return outbox.undelivered(store)
    finally:
        store.dispose()


def test_each_alert_arrives_once_signed_across_a_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    port = _free_port()
    file = demo_copy(tmp_path, port)
    _with_webhook(file, f"http://127.0.0.1:{receiver.server_address[1]}/hook")
    url, log = f"http://127.0.0.1:{port}", tmp_path / "daemon.log"
    env = {"COVENANT_TEST_HOOK_SECRET": SECRET}

    with running_daemon(file, url, log, **env):
        # Both of the maker's approvals are waiting: one taken, the other refused (retried).
        _until("one event taken and another refused", lambda: len(set(receiver.attempts)) >= 2)
    before = [event_id for event_id, _body, _headers in receiver.taken]
    assert len(before) == 1
    assert _undelivered(file) >= 1  # the outbox still holds what was refused

    receiver.open_all = True
    with running_daemon(file, url, log, **env):
        _until("the outbox to be delivered", lambda: _undelivered(file) == 0)
        time.sleep(3)  # a few more producer rounds: nothing may be enqueued again

    taken = [event_id for event_id, _body, _headers in receiver.taken]
    assert len(taken) == len(set(taken)), f"an alert came twice: {taken}"
    assert taken[0] == before[0]
    assert len(taken) == 2
    assert all(event_id.startswith("approval_waiting:") for event_id in taken)
    for _event_id, body, headers in receiver.taken:
        timestamp = headers["X-Covenant-Timestamp"]
        assert signature_ok(SECRET.encode(), timestamp, body, headers[SIGNATURE_HEADER])
        # Negative control: the same signature does not fit an edited body or another key.
        edited = body.replace(b"maker", b"taker")
        assert not signature_ok(SECRET.encode(), timestamp, edited, headers[SIGNATURE_HEADER])
        assert not signature_ok(b"other", timestamp, body, headers[SIGNATURE_HEADER])
        assert json.loads(body)["data"]["agent"] == "maker"
