"""Observation sources: tasks from a file or an HTTP inbox, each item untrusted and
validated on its own; a source that fails costs the tick that source only."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from agents.observe import Observer
from agents.planners._prompt import build_messages
from agents.sources import build_sources
from agents.sources.base import MAX_BYTES, SourceError
from agents.sources.http_inbox import HttpInbox, HttpInboxParams
from agents.sources.task_file import TaskFile, TaskFileParams
from config.loader import load_deployment
from main import app
from wallets.operator import AgentWallet

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")
INVOICE = {
    "id": "inv-17",
    "payee": "acme-supplier",
    "chain": "arbitrum-local",
    "asset": "ETH",
    "amount": "0.05",
    "memo": "November supplies",
}


def _file(tmp_path: Path, name: str, text: str) -> TaskFile:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return TaskFile("TaskFile", TaskFileParams(path=str(path)))


async def test_a_yaml_file_gives_its_valid_items_and_says_why_it_left_one_out(tmp_path) -> None:
    text = json.dumps({"tasks": [INVOICE, {**INVOICE, "id": "inv-18", "amount": 0.05}, "x"]})
    read = await _file(tmp_path, "inbox.yaml", text).read()
    assert [task.id for task in read.tasks] == ["inv-17"]
    assert read.tasks[0].amount == Decimal("0.05")
    assert read.tasks[0].source == "TaskFile"
    # a float amount has already lost precision; a non-mapping is not an item
    assert len(read.skipped) == 2
    assert "item 1 left out: amount" in read.skipped[0]
    assert "item 2 left out" in read.skipped[1]


async def test_a_json_list_is_read_and_a_missing_file_is_no_tasks_yet(tmp_path) -> None:
    read = await _file(tmp_path, "inbox.json", json.dumps([INVOICE])).read()
    assert [task.payee for task in read.tasks] == ["acme-supplier"]
    missing = TaskFile("TaskFile", TaskFileParams(path=str(tmp_path / "none.yaml")))
    assert (await missing.read()).tasks == []


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("bad.json", "{not json", "is not valid json"),
        ("bad.yaml", "tasks: [unclosed", "is not valid yaml"),
        ("scalar.yaml", "just words", "expected a list of tasks"),
        ("big.yaml", "#" * (MAX_BYTES + 1), "is over"),
    ],
)
async def test_an_unreadable_file_is_refused_by_name(tmp_path, name, text, says) -> None:
    with pytest.raises(SourceError, match=says) as raised:
        await _file(tmp_path, name, text).read()
    assert "source TaskFile" in str(raised.value)


class _Inbox(BaseHTTPRequestHandler):
    status = 200
    body = b"[]"

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def inbox() -> Iterator[tuple[str, type[_Inbox]]]:
    handler = type("Inbox", (_Inbox,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tasks", handler
    server.shutdown()
    server.server_close()


async def test_an_http_inbox_gives_its_tasks(inbox) -> None:
    url, handler = inbox
    handler.body = json.dumps({"tasks": [INVOICE]}).encode()
    read = await HttpInbox("HttpInbox", HttpInboxParams(url=url)).read()
    assert [task.id for task in read.tasks] == ["inv-17"]


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (500, b"{}", "answered HTTP 500"),
        (200, b"<html>", "did not answer JSON"),
        (200, b"[" + b" " * MAX_BYTES + b"]", "over"),
    ],
)
async def test_a_failing_http_inbox_is_refused_with_the_reason(inbox, status, body, says) -> None:
    url, handler = inbox
    handler.status, handler.body = status, body
    with pytest.raises(SourceError, match=says):
        await HttpInbox("HttpInbox", HttpInboxParams(url=url)).read()


async def test_an_unreachable_inbox_says_so() -> None:
    source = HttpInbox("HttpInbox", HttpInboxParams(url="http://127.0.0.1:9/tasks", timeout="1"))
    with pytest.raises(SourceError, match="unreachable"):
        await source.read()


def _deployment(tmp_path: Path, sources: str) -> Path:
    demo_source = "      - TaskFile: {path: demo-invoices.yaml}\n"
    assert demo_source in DEMO
    text = DEMO.replace(demo_source, sources, 1)
    path = tmp_path / "deployment.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_the_observer_shows_tasks_and_a_broken_source_as_an_outcome(tmp_path) -> None:
    (tmp_path / "inbox.yaml").write_text(json.dumps([INVOICE]), encoding="utf-8")
    (tmp_path / "broken.yaml").write_text("tasks: [", encoding="utf-8")
    path = _deployment(
        tmp_path, "      - TaskFile: {path: inbox.yaml}\n      - TaskFile: {path: broken.yaml}\n"
    )
    deployment = load_deployment(path)  # source paths resolve beside the file
    agent = deployment.agent("payer")
    # No chain adapters: balances are left out and the wallet is never read.
    wallet = cast(AgentWallet, None)
    observer = Observer(deployment, agent, wallet, {}, sources=build_sources(agent))
    observation = await observer.observe([])
    assert [task.id for task in observation.tasks] == ["inv-17"]
    assert [o.ok for o in observation.recent_outcomes] == [False]
    assert "broken.yaml is not valid yaml" in observation.recent_outcomes[0].summary
    assert list(observer.outcomes) == []  # a source problem is not remembered as an outcome
    prompt = build_messages(deployment, observation)[1]["content"]
    assert "invoice inv-17 (from TaskFile): 0.05 ETH on arbitrum-local to acme-supplier" in prompt
    assert '<data from="invoice memo">November supplies</data>' in prompt


def test_config_validate_names_a_bad_source_by_line(tmp_path) -> None:
    path = _deployment(tmp_path, "      - Mailbox: {}\n      - HttpInbox: {url: ftp://x}\n")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    output = " ".join(f"{result.output}{result.exception or ''}".split())
    assert result.exit_code != 0
    line = path.read_text().splitlines().index("      - Mailbox: {}") + 1
    assert f"deployment.yaml:{line}: agents[0].sources[0].Mailbox: unknown source" in output
    assert f"deployment.yaml:{line + 1}: agents[0].sources[1].HttpInbox: url:" in output


def test_the_demo_without_sources_still_validates(tmp_path) -> None:
    """Negative control for the test above: the same file with a valid source passes."""
    path = _deployment(tmp_path, "      - TaskFile: {path: inbox.yaml}\n")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output


async def test_a_task_id_given_by_two_sources_is_kept_once_with_a_reason(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text(json.dumps([INVOICE]), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(json.dumps([{**INVOICE, "amount": "9"}]), encoding="utf-8")
    deployment = load_deployment(_deployment(tmp_path, "      - TaskFile: {path: a.yaml}\n"))
    agent = deployment.agent("payer")
    wallet = cast(AgentWallet, None)
    sources = build_sources(agent)
    twin = TaskFile("Twin", TaskFileParams(path=str(tmp_path / "b.yaml")))
    observer = Observer(deployment, agent, wallet, {}, sources=[sources[0], twin])
    observation = await observer.observe([])
    assert [(task.id, task.source, task.amount) for task in observation.tasks] == [
        ("inv-17", "TaskFile", Decimal("0.05"))
    ]
    (problem,) = [o.summary for o in observation.recent_outcomes]
    assert problem == (
        "source Twin: task inv-17 left out: another source already gave a task with that id"
    )
