"""Reads retry with backoff; broadcasts are sent once and never retried blindly."""

from __future__ import annotations

import pytest
from aiohttp import web
from eth_account import Account

from chains import _retry
from chains.families.evm.adapter import EvmAdapter
from config.errors import ChainError, RpcUnreachable
from tests.chains.conftest import evm_chain

KEY = Account.create().key


async def test_reads_retry_until_the_endpoint_answers():
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RpcUnreachable("down")
        return "ok"

    assert await _retry.read(flaky, first_delay=0.001) == "ok"
    assert len(attempts) == 3


async def test_reads_give_up_and_other_errors_are_not_retried():
    attempts: list[int] = []

    async def broken() -> str:
        attempts.append(1)
        raise ChainError("a real answer")

    with pytest.raises(ChainError, match=r"a real answer"):
        await _retry.read(broken, first_delay=0.001)
    assert len(attempts) == 1


async def test_broadcast_is_sent_once_when_the_endpoint_fails(aiohttp_node):
    url, counts = aiohttp_node
    adapter = await EvmAdapter.connect(evm_chain(), url=url)
    tx = {
        "type": 2,
        "chainId": 31337,
        "nonce": 0,
        "gas": 21_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "to": Account.create().address,
        "value": 1,
        "data": b"",
    }
    signed = bytes(Account.from_key(KEY).sign_transaction(tx).raw_transaction)
    with pytest.raises(RpcUnreachable):
        await adapter.broadcast(signed)
    await adapter.close()
    assert counts["eth_sendRawTransaction"] == 1
    assert counts["eth_call"] == 1


@pytest.fixture
async def aiohttp_node(unused_tcp_port):
    """A node that answers reads but fails (HTTP 502) on eth_sendRawTransaction."""
    counts: dict[str, int] = {}

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        method = body["method"]
        counts[method] = counts.get(method, 0) + 1
        if method == "eth_sendRawTransaction":
            return web.Response(status=502, text="bad gateway")
        result = {"eth_chainId": hex(31337), "eth_call": "0x"}.get(method)
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": result})

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    yield f"http://127.0.0.1:{unused_tcp_port}", counts
    await runner.cleanup()
