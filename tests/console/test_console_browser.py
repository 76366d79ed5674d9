"""Acceptance in a real browser: log in to the demo daemon's console, see its agents,
approve the maker's 0.2 ETH transfer and see it executed on anvil, reject the 0.3 ETH
one, and write screenshots of the overview and the approvals page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from agents import audit
from chains.connect import resolve_url
from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store
from policies.approvals import list_requests
from tests.console._browser import artifacts_dir, chromium
from tests.console.conftest import DemoDaemon

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
WAIT = 150.0  # seconds the demo may take to reach a state (a bound, not a speed target)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        launched.close()


def _until(what: str, check: object) -> None:
    deadline = time.monotonic() + WAIT
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _maker_plans_ended(deployment: Deployment) -> list[dict[str, object]]:
    """The maker's audit entries that say how one of its escrow plans ended."""
    store = open_store(deployment.store.url or "")
    try:
        entries = audit.entries(store, "maker")
        return [r.body["plan_ended"] for r in entries if "plan_ended" in r.body]
    finally:
        store.dispose()


def _maker_executed(deployment: Deployment) -> list[dict[str, object]]:
    store = open_store(deployment.store.url or "")
    try:
        return [
            action
            for record in audit.entries(store, "maker")
            for action in record.body.get("actions", [])
            if action["state"] == "executed" and "0.2 ETH" in action["summary"]
        ]
    finally:
        store.dispose()


def _pending(deployment: Deployment) -> int:
    store = open_store(deployment.store.url or "")
    try:
        return len(list_requests(store, "pending"))
    finally:
        store.dispose()


def _on_anvil(deployment: Deployment, tx_id: str) -> tuple[int, int, str]:
    """The transaction's value, its receipt's status and its recipient, from anvil."""
    from web3 import HTTPProvider, Web3

    url = resolve_url(deployment.chain("arbitrum-local"), deployment.data_dir)
    web3 = Web3(HTTPProvider(url))
    transaction = web3.eth.get_transaction(tx_id)  # type: ignore[arg-type]
    receipt = web3.eth.get_transaction_receipt(tx_id)  # type: ignore[arg-type]
    return int(transaction["value"]), int(receipt["status"]), str(transaction["to"])


def _log_in(page: Page, daemon: DemoDaemon) -> None:
    page.goto(daemon.url + "/login")
    page.fill("#token", daemon.token)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#agents")


def test_operator_approves_one_transfer_rejects_another_and_sees_it_on_chain(
    demo_daemon: DemoDaemon, browser: Browser
) -> None:
    deployment = load_deployment(demo_daemon.file)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    _log_in(page, demo_daemon)
    for name in ("payer", "maker", "taker"):
        assert page.locator(f"#agents tr[data-agent={name}]").count() == 1

    _until("the maker's two transfers to wait for approval", lambda: _pending(deployment) >= 2)
    shots = artifacts_dir()
    page.goto(demo_daemon.url + "/")
    page.screenshot(path=str(shots / "console-overview.png"), full_page=True)
    page.goto(demo_daemon.url + "/approvals")
    page.screenshot(path=str(shots / "console-approvals.png"), full_page=True)
    print(f"\nconsole screenshots in {shots}")

    small = page.locator("section.approval", has_text="0.2 ETH")
    large = page.locator("section.approval", has_text="0.3 ETH")
    assert small.count() == 1
    assert large.count() == 1
    assert "taker" in small.inner_text()
    assert "0x" in small.inner_text()
    digest = small.locator("code.digest").inner_text()
    recipient = small.locator("code.address").inner_text()

    # Bound to the digest shown: the same form with another digest is refused...
    form = small.locator("form[action$=approve]")
    reply = page.request.post(
        demo_daemon.url + str(form.get_attribute("action")),
        form={"csrf": str(form.locator("[name=csrf]").input_value()), "digest": "ab" * 32},
    )
    assert reply.status == 409
    assert "not the" in reply.text()
    # ...and with the digest the page showed, clicking approve is accepted.
    small.locator("button.approve").click()
    page.wait_for_url("**/approvals")
    page.locator("section.approval", has_text="0.3 ETH").locator("button.reject").click()
    page.wait_for_url("**/approvals")
    assert page.locator("section.approval").count() == 0

    _until("the approved transfer to be executed", lambda: _maker_executed(deployment))
    tx_id = str(_maker_executed(deployment)[0]["tx_id"])
    value, status, to = _on_anvil(deployment, tx_id)
    assert (value, status) == (int(Decimal("0.2") * 10**18), 1)
    assert to.lower() == recipient.lower()

    page.goto(demo_daemon.url + "/plans")
    plans = page.locator("#plans tbody tr")
    assert plans.count() >= 2  # the maker's and the taker's side of the swap
    assert "deadline" in plans.first.inner_text()
    assert "arbitrum-local: 0.1 ETH" in page.locator("#plans").inner_text()

    _until("the maker's swap to end", lambda: _maker_plans_ended(deployment))
    page.goto(demo_daemon.url + "/agents/maker")
    maker_page = page.locator("#entries").inner_text()
    # How the swap ended is an entry of its own, shown as such (not as an empty tick).
    ended = _maker_plans_ended(deployment)
    assert all(f"escrow {end['summary']}" in maker_page for end in ended), ended
    assert "console: approve" in maker_page
    assert "console: reject" in maker_page
    assert tx_id in maker_page
    assert page.locator("#log-status").inner_text() == "intact"
    store = open_store(deployment.store.url or "")
    try:
        decided = {r.summary: r for r in list_requests(store) if r.agent == "maker"}
    finally:
        store.dispose()
    statuses = [r.status for r in decided.values()]
    assert digest in {r.digest for r in decided.values()}
    assert sorted(statuses) == ["rejected", "used"], statuses
