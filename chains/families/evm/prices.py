"""Chainlink AggregatorV3 feeds on EVM chains: reading one, and the local feed `devnet up`
installs and `devnet price` moves.

A reading is ``latestRoundData()`` and ``decimals()`` through the chain adapter's one
read path, parsed from the raw ABI words as integers (no float anywhere): the answer is
a signed int256, the price ``answer * 10**-decimals``. An answer of zero or below, or an
``updatedAt`` of zero (a round that never completed), is refused: Chainlink's own
consumers are told to check both.

The local feed is Chainlink's MockV3Aggregator, compiled from the pinned
``@chainlink/contracts`` (``aggregator/``). As the HTLC, its runtime code is put at an
address derived from the symbol with ``anvil_setCode`` (no deployer, the same address on
every devnet); it is moved with its own ``updateRoundData`` in a transaction from an
impersonated keeper, so the contract's code, not ours, sets what ``latestRoundData``
answers.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from chains.devnet._fund import node_call
from chains.families.evm.aggregator.build import ARTIFACT
from chains.families.evm.devnet import send_as
from config.errors import ChainError
from config.prices import FeedReading

if TYPE_CHECKING:
    from chains.families.evm.adapter import EvmAdapter
    from config.prices import ChainlinkFeed

LOCAL_DECIMALS = 8
"""Decimals of the local feeds, as Chainlink's USD feeds have."""

KEEPER = to_checksum_address(hashlib.sha256(b"covenant:price:keeper:v1").digest()[:20])
"""The impersonated account that sends the local feeds' updates."""

_LATEST = function_signature_to_4byte_selector("latestRoundData()")
_DECIMALS = function_signature_to_4byte_selector("decimals()")
_UPDATE = function_signature_to_4byte_selector("updateRoundData(uint80,int256,uint256,uint256)")


def local_feed_address(symbol: str) -> str:
    """Where the local feed of `symbol` lives on every local EVM chain."""
    return to_checksum_address(hashlib.sha256(f"covenant:price:{symbol}:v1".encode()).digest()[:20])


def parse_round(latest: bytes, decimals: bytes, where: str) -> FeedReading:
    """A reading from the raw answers of ``latestRoundData()`` and ``decimals()``."""
    if len(latest) != 5 * 32 or len(decimals) != 32:
        raise ChainError(
            f"{where} did not answer as an AggregatorV3 ({len(latest)} bytes for "
            "latestRoundData); check the feed address"
        )
    _round, answer, _started, updated_at, _answered = decode(
        ["uint80", "int256", "uint256", "uint256", "uint80"], latest
    )
    (places,) = decode(["uint8"], decimals)
    if answer <= 0:
        raise ChainError(f"{where} answered {answer}; a price must be above zero")
    if updated_at == 0:
        raise ChainError(f"{where} has updatedAt 0: its latest round never completed")
    return FeedReading(usd=Decimal(answer).scaleb(-places), published_at=int(updated_at))


async def read_chainlink(adapter: EvmAdapter, feed: ChainlinkFeed, address: str) -> FeedReading:
    """Read the feed at `address` through `adapter`."""
    where = f"chainlink feed {address} on {feed.chain}"
    target = to_checksum_address(address)

    def call(data: bytes) -> Any:
        return lambda: adapter.w3.eth.call({"to": target, "data": data})

    latest = await adapter.read(call(_LATEST), f"{where} latestRoundData")
    decimals = await adapter.read(call(_DECIMALS), f"{where} decimals")
    return parse_round(bytes(latest), bytes(decimals), where)


def _answer(usd: Decimal) -> int:
    scaled = usd.scaleb(LOCAL_DECIMALS)
    if scaled != scaled.to_integral_value() or scaled <= 0:
        raise ChainError(f"price {usd} must be above zero with at most {LOCAL_DECIMALS} decimals")
    return int(scaled)


async def set_local_chainlink(url: str, symbol: str, usd: Decimal, published_at: int) -> str:
    """Install (if absent) the local feed of `symbol` on the anvil at `url` and publish
    `usd` with ``updatedAt`` `published_at`; returns the feed's address."""
    address, answer = local_feed_address(symbol), _answer(usd)
    doing = f"moving the local {symbol} price feed"
    async with httpx.AsyncClient(timeout=10) as client:

        async def rpc(method: str, params: list[object]) -> str:
            return await node_call(client, url, method, params, doing=doing)

        if await rpc("eth_getCode", [address, "latest"]) in ("0x", ""):
            await _install(rpc, address, answer)
        latest = bytes.fromhex(
            (await rpc("eth_call", [{"to": address, "data": "0x" + _LATEST.hex()}, "latest"]))[2:]
        )
        next_round = int(decode(["uint80"], latest[:32])[0]) + 1
        data = _UPDATE + encode(
            ["uint80", "int256", "uint256", "uint256"],
            [next_round, answer, published_at, published_at],
        )
    await send_as(url, KEEPER, address, data, doing=f"updateRoundData on the local {symbol} feed")
    return address


async def _install(rpc: Any, address: str, answer: int) -> None:
    artifact = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    creation = bytes.fromhex(str(artifact["bytecode"])[2:]) + encode(
        ["uint8", "int256"], [LOCAL_DECIMALS, answer]
    )
    runtime = await rpc("eth_call", [{"data": "0x" + creation.hex()}, "latest"])
    await rpc("anvil_setCode", [address, runtime])
    # setCode skips the constructor: `decimals`, the contract's first storage slot, is set
    # by hand; the first round is published by updateRoundData like every other.
    await rpc(
        "anvil_setStorageAt", [address, "0x0", "0x" + LOCAL_DECIMALS.to_bytes(32, "big").hex()]
    )
