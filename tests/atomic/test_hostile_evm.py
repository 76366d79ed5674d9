"""The EVM side of a swap against hostile RPC limits and a curious RPC: a provider that
caps ``eth_getLogs`` ranges, and one that records every request it is sent.

Both run as a real HTTP JSON-RPC proxy in front of anvil (:class:`RpcProxy`). Its range
refusals copy what providers answer, each quoted from a public report:

- Alchemy (BobTheBuidler/dank_mids#772): code -32600, "You can make eth_getLogs requests
  with up to a 500 block range. Based on your parameters, this block range should work:
  [0x123c9b2, 0x123cba5]";
- Infura (INFURA/infura#237): code -32602, "range 1000000 exceeds limit of 10000";
- Tenderly (bobanetwork/boba_legacy#827): code -32602, "invalid params", the reason only
  in data.payload: "range 9009594 is bigger than range limit 2000";
- QuickNode (OffchainLabs/arbitrum-sdk#609): HTTP 413 with code -32614, "eth_getLogs is
  limited to a 10,000 range";
- Moonbeam / Frontier (moonbeam-foundation/moonbeam#3250): "block range is too wide
  (maximum 1024)";
- geth-style result caps (aurora-is-near/aurora-relayer#327): code -32005, "query
  returned more than 10000 results".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from web3.types import RPCEndpoint

from chains.atomic.base import Leg
from chains.atomic.swap import SwapSide
from chains.families.evm import htlc_client as evm_client
from chains.families.evm.adapter import EvmAdapter
from chains.families.evm.escrow import EvmHtlc
from config.errors import ChainError
from tests.atomic._env import TEST_MARGINS, EvmNode, unique
from tests.atomic._swap import ETH, close, make_side, open_swap, run_both, trusting

pytestmark = pytest.mark.anvil

LIMIT = 50
"""Widest eth_getLogs range (blocks) the proxy serves."""
CLAIMED_TOPIC = "0x" + keccak(text="Claimed(bytes32,bytes32)").hex()


def _refusal(style: str, wide: int) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON-RPC error of `style`'s answer to a `wide`-block range."""
    if style == "alchemy":
        message = (
            f"You can make eth_getLogs requests with up to a {LIMIT} block range. Based on "
            "your parameters, this block range should work: [0x1, 0x32]"
        )
        return 200, {"code": -32600, "message": message}
    if style == "infura":
        return 200, {"code": -32602, "message": f"range {wide} exceeds limit of {LIMIT}"}
    if style == "tenderly":
        payload = f"range {wide} is bigger than range limit {LIMIT}"
        return 200, {"code": -32602, "message": "invalid params", "data": {"payload": payload}}
    if style == "quicknode":
        return 413, {"code": -32614, "message": f"eth_getLogs is limited to a {LIMIT} range"}
    if style == "frontier":
        return 200, {"code": -32603, "message": f"block range is too wide (maximum {LIMIT})"}
    if style == "results":
        return 200, {"code": -32005, "message": "query returned more than 10000 results"}
    if style == "broken":  # not a range limit: must not be retried as one
        return 200, {"code": -32000, "message": "header not found"}
    raise AssertionError(style)


class RpcProxy:
    """A JSON-RPC proxy to `upstream` that records every request body and refuses
    eth_getLogs ranges wider than :data:`LIMIT` blocks the way `style` does (None: it
    refuses nothing)."""

    def __init__(self, upstream: str, style: str | None = None) -> None:
        self.upstream, self.style = upstream, style
        self.bodies: list[str] = []
        self.served: list[tuple[int, int, list[str]]] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def seen(self, secret: bytes, before: int | None = None) -> bool:
        """Whether any request (of the first `before`) carried `secret`."""
        with self._lock:
            bodies = self.bodies[:before]
        return any(secret.hex() in body.lower() for body in bodies)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, answer = proxy._answer(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def _answer(self, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            self.bodies.append(body.decode())
        request = json.loads(body)
        if isinstance(request, dict) and request.get("method") == "eth_getLogs":
            refused = self._refuse(request)
            if refused is not None:
                return refused
        return 200, self._forward(body)

    def _refuse(self, request: dict[str, Any]) -> tuple[int, bytes] | None:
        query = request["params"][0]
        bottom, top = self._block(query.get("fromBlock")), self._block(query.get("toBlock"))
        wide = top - bottom + 1
        if self.style is None or (wide <= LIMIT and self.style != "broken"):
            with self._lock:
                self.served.append((bottom, top, list(query.get("topics", []))))
            return None
        with self._lock:
            self.refused += 1
        status, error = _refusal(self.style, wide)
        answer = {"jsonrpc": "2.0", "id": request["id"], "error": error}
        return status, json.dumps(answer).encode()

    def _block(self, tag: Any) -> int:
        if tag in (None, "latest", "pending", "safe", "finalized"):
            number = json.loads(self._forward(_rpc_body("eth_blockNumber", [])))["result"]
            return int(number, 16)
        return 0 if tag == "earliest" else int(tag, 16)

    def _forward(self, body: bytes) -> bytes:
        request = urllib.request.Request(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return bytes(answer.read())


def _rpc_body(method: str, params: list[Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()


@pytest.fixture
def proxies() -> Iterator[list[RpcProxy]]:
    started: list[RpcProxy] = []
    yield started
    for proxy in started:
        proxy.close()


def _proxy(proxies: list[RpcProxy], node: EvmNode, style: str | None = None) -> RpcProxy:
    proxy = RpcProxy(node.url, style)
    proxies.append(proxy)
    return proxy


async def _htlc_via(node: EvmNode, url: str) -> EvmHtlc:
    adapter = await EvmAdapter.connect(node.config(), url=url)
    return EvmHtlc(adapter, node.contract, margin=TEST_MARGINS.of(node.name, "evm"))


def _mine(node: EvmNode, blocks: int) -> None:
    node.w3.provider.make_request(RPCEndpoint("anvil_mine"), [hex(blocks)])


async def _send(htlc: EvmHtlc, node: EvmNode, account: Any, purpose: str, leg: Leg, **kw: Any):
    """Build `purpose` through the HTLC client, sign it here, send it, wait for it."""
    unsigned = await htlc.build(purpose, leg, payer=account.address, **kw)  # type: ignore[arg-type]
    signed = account.sign_transaction(unsigned.tx)  # type: ignore[attr-defined]
    tx_hash = node.w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = node.w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1, (purpose, receipt)
    return "0x" + bytes(tx_hash).hex()


async def _claimed_far_from_lock(node: EvmNode) -> tuple[Leg, bytes, str]:
    """Lock a fresh escrow, mine 2 * LIMIT blocks, claim it, mine 2 * LIMIT more: the
    claim sits far from both the lock and the latest block. Returns leg, preimage, lock
    transaction."""
    return await _escrow(node, claimed=True)


async def _escrow(node: EvmNode, *, claimed: bool) -> tuple[Leg, bytes, str]:
    account = Account.create()
    node.fund(account.address, ETH)
    preimage = os.urandom(32)
    now = int(node.w3.eth.get_block("latest")["timestamp"])
    leg = Leg(
        index=0,
        chain=node.name,
        sender=account.address,
        recipient=Account.create().address,
        amount=10**15,
        deadline=now + 3600,
        locator="0x" + os.urandom(32).hex(),
    )
    htlc = await _htlc_via(node, node.url)
    try:
        hashlock = hashlib.sha256(preimage).digest()
        lock_tx = await _send(htlc, node, account, "lock", leg, hashlock=hashlock)
        if claimed:
            _mine(node, 2 * LIMIT)
            await _send(htlc, node, account, "claim", leg, preimage=preimage)
            _mine(node, 2 * LIMIT)
    finally:
        await htlc.close()
        await htlc.adapter.close()
    return leg, preimage, lock_tx


# --- finding 1: eth_getLogs range limits ------------------------------------------------------


@pytest.mark.parametrize(
    "style", ["alchemy", "infura", "tenderly", "quicknode", "frontier", "results"]
)
async def test_preimage_is_found_behind_a_provider_that_caps_log_ranges(evm_nodes, proxies, style):
    node = evm_nodes["arb"]
    leg, preimage, lock_tx = await _claimed_far_from_lock(node)
    proxy = _proxy(proxies, node, style)
    # Negative control: the proxy really refuses the range from the lock to the tip.
    lock_block = int(node.w3.eth.get_transaction_receipt(lock_tx)["blockNumber"])
    query = {"address": node.contract, "fromBlock": hex(lock_block), "toBlock": "latest"}
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(proxy.url, content=_rpc_body("eth_getLogs", [query]))
    assert "error" in answer.json()
    assert proxy.refused == 1

    htlc = await _htlc_via(node, proxy.url)
    try:
        assert await htlc.revealed_preimage(leg, _hash(preimage), lock_tx=lock_tx) == preimage
        key = "0x" + evm_client.escrow_key(leg.sender, bytes.fromhex(leg.locator[2:])).hex()
        assert proxy.served, "no eth_getLogs window was served"
        assert all(top - bottom < LIMIT for bottom, top, _ in proxy.served)
        assert all(topics == [CLAIMED_TOPIC, key] for _, _, topics in proxy.served)
        # The window that worked is kept: a second search is refused nothing.
        refused = proxy.refused
        assert await htlc.revealed_preimage(leg, _hash(preimage), lock_tx=lock_tx) == preimage
        assert proxy.refused == refused
    finally:
        await htlc.close()
        await htlc.adapter.close()


async def test_other_log_errors_are_not_taken_for_range_limits(evm_nodes, proxies):
    """Negative control: an eth_getLogs error that is not a range limit fails the search
    instead of shrinking the window until it gives up."""
    node = evm_nodes["arb"]
    leg, preimage, lock_tx = await _claimed_far_from_lock(node)
    proxy = _proxy(proxies, node, "broken")
    htlc = await _htlc_via(node, proxy.url)
    try:
        with pytest.raises(ChainError, match="header not found"):
            await htlc.revealed_preimage(leg, _hash(preimage), lock_tx=lock_tx)
        assert proxy.refused == 1
    finally:
        await htlc.close()
        await htlc.adapter.close()


async def test_log_window_is_configurable(evm_nodes, proxies):
    """A smaller configured window pages an endpoint that refuses nothing; a window of
    no blocks is refused with the value named."""
    node = evm_nodes["arb"]
    leg, preimage, lock_tx = await _claimed_far_from_lock(node)
    proxy = _proxy(proxies, node)
    adapter = await EvmAdapter.connect(node.config(), url=proxy.url)
    margin = TEST_MARGINS.of(node.name, "evm")
    with pytest.raises(ChainError, match="log_window must be at least 1 block, got 0"):
        EvmHtlc(adapter, node.contract, margin=margin, log_window=0)
    htlc = EvmHtlc(adapter, node.contract, margin=margin, log_window=10)
    try:
        assert await htlc.revealed_preimage(leg, _hash(preimage), lock_tx=lock_tx) == preimage
        assert len(proxy.served) > 2 * LIMIT // 10  # the claim is 2 * LIMIT blocks back
        assert all(top - bottom < 10 for bottom, top, _ in proxy.served)
    finally:
        await htlc.close()
        await adapter.close()


# --- finding 4: the preimage reaches no RPC before the claim is authorized ----------------


@pytest.fixture
async def watched_swap(tmp_path, evm_nodes, proxies):
    """A maker whose every RPC request goes through a recording proxy, and a taker."""
    nodes = [evm_nodes["arb"], evm_nodes["base"]]
    watched = {node.name: _proxy(proxies, node) for node in nodes}
    through = [dataclasses.replace(node, url=watched[node.name].url) for node in nodes]
    maker = await make_side("maker", tmp_path, through, None)
    taker = await make_side("taker", tmp_path, nodes, None, verify=trusting)
    for side in (maker, taker):
        for node in nodes:
            node.fund(side.wallet.evm_address, 10 * ETH)
    yield maker, taker, watched
    await close(maker, taker)


async def test_claim_preimage_reaches_no_rpc_before_the_claim_is_authorized(
    watched_swap, evm_nodes
):
    maker, taker, watched = watched_swap
    # Hook the point where the policy engine's authorization is minted: note how many
    # requests each proxy had seen when the maker's claim was authorized.
    at_claim: dict[str, int] = {}

    def on_mint() -> None:
        if maker.authorizer.seen[-1][1] == "claim":
            at_claim.update({name: len(proxy.bodies) for name, proxy in watched.items()})

    maker.authorizer.mint = _RecordingMint(maker.authorizer.mint, on_mint)
    plan_id = unique("quiet-claim")
    give, take = SwapSide(chain="arb", amount=ETH // 10), SwapSide(chain="base", amount=ETH // 5)
    await open_swap(maker, taker, plan_id, give=give, take=take)
    made, taken = await run_both(maker, taker, plan_id)
    assert (made.state, taken.state) == ("claimed", "claimed"), (made.reason, taken.reason)
    preimage = maker.coordinator.preimage(maker.coordinator.store.get(plan_id))
    assert at_claim, "the maker's claim was never authorized"
    early = [name for name, proxy in watched.items() if proxy.seen(preimage, at_claim[name])]
    assert early == [], "these RPCs saw the preimage before the claim was authorized"
    # Negative control: the recorder does see the preimage once the claim is sent.
    assert watched["base"].seen(preimage)
    _claim_gas_covers_receipt(maker, plan_id, evm_nodes["base"])


class _RecordingMint:
    """The test's AuthorizationMint, calling `on_mint` just before each mint."""

    def __init__(self, inner: Any, on_mint: Any) -> None:
        self._inner, self._on_mint = inner, on_mint

    def mint(self, *args: Any, **kwargs: Any) -> Any:
        self._on_mint()
        return self._inner.mint(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _claim_gas_covers_receipt(maker: Any, plan_id: str, node: EvmNode) -> None:
    """The maker's claim, built with a fixed gas limit, used at most two thirds of it."""
    [step] = maker.coordinator.store.steps(plan_id, 1, "claim")
    tx = node.w3.eth.get_transaction(step.tx_id)
    receipt = node.w3.eth.get_transaction_receipt(step.tx_id)
    assert int(receipt["gasUsed"]) * 3 // 2 <= int(tx["gas"])


async def test_a_claim_that_would_revert_is_refused_before_authorization(evm_nodes, proxies):
    """Without an estimate the claim's checks are made on public state: a claim of a
    settled or missing escrow, or with a wrong preimage, fails the build (before any
    authorization), and the proxy never sees the bytes tried. Negative control: the
    right preimage of a locked escrow builds."""
    node = evm_nodes["arb"]
    settled, settled_preimage, _ = await _claimed_far_from_lock(node)
    locked, preimage, _ = await _escrow(node, claimed=False)
    proxy = _proxy(proxies, node)
    htlc = await _htlc_via(node, proxy.url)
    wrong = os.urandom(32)
    missing = locked.model_copy(update={"locator": "0x" + os.urandom(32).hex()})
    try:
        for leg, tried, error in [
            (settled, settled_preimage, "SwapSettled"),
            (missing, preimage, "SwapNotFound"),
            (locked, wrong, "WrongPreimage"),
        ]:
            with pytest.raises(ChainError, match=error):
                await htlc.build("claim", leg, preimage=tried, payer=leg.sender)
        unsigned = await htlc.build("claim", locked, preimage=preimage, payer=locked.sender)
        assert unsigned.intent.args[1] == preimage  # type: ignore[union-attr]
        leaked = [proxy.seen(secret) for secret in (settled_preimage, preimage, wrong)]
        assert leaked == [False, False, False], "the RPC saw a preimage before authorization"
    finally:
        await htlc.close()
        await htlc.adapter.close()


def _hash(preimage: bytes) -> bytes:
    return hashlib.sha256(preimage).digest()
