"""The EVM family's local chains: anvil nodes, their faucet, and the HTLC and local
tokens installed at fixed addresses.

A contract's runtime code (obtained by executing the committed creation code in an
``eth_call``) is placed at its address with ``anvil_setCode`` (the HTLC at
:data:`LOCAL_EVM_HTLC`, the local USDC of each `erc20: local` symbol at
:func:`local_token_address`), so addresses are the same on every devnet and survive
restarts without a deployer account or nonce. Writes that must run contract code (a
mint, a feed update) are sent from an impersonated account (:func:`send_as`), so nothing
here holds or signs with a key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING

import httpx
from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from chains.devnet._fund import node_call, node_result
from chains.families.evm import htlc_client
from chains.families.evm.token.build import ARTIFACT as TOKEN_ARTIFACT
from config.errors import ChainError

if TYPE_CHECKING:
    from chains.devnet._fund import NodeCall

_INSTALLING = "installing the HTLC"

LOCAL_EVM_HTLC = to_checksum_address(hashlib.sha256(b"covenant:htlc:evm:v1").digest()[:20])
"""Where `devnet up` installs the HTLC contract on every local EVM chain."""

MINTER = to_checksum_address(hashlib.sha256(b"covenant:token:minter:v1").digest()[:20])
"""The impersonated account that mints local tokens to the agents `devnet up` funds."""

_MINT = function_signature_to_4byte_selector("mint(address,uint256)")
_BALANCE_OF = function_signature_to_4byte_selector("balanceOf(address)")


def local_token_address(symbol: str) -> str:
    """Where the local token of `symbol` (an asset declared `erc20: local`) lives."""
    return to_checksum_address(hashlib.sha256(f"covenant:token:{symbol}:v1".encode()).digest()[:20])


async def fund(call: NodeCall, address: str, amount: int) -> None:
    """anvil sets the balance itself: nothing is signed."""
    await call("anvil_setBalance", [address, hex(amount)])


async def install_evm_htlc(url: str) -> None:
    """Put the HTLC runtime code at :data:`LOCAL_EVM_HTLC` on the anvil at `url`
    (nothing to do if it is there already, e.g. from the saved chain state)."""
    async with httpx.AsyncClient(timeout=10) as client:
        if await node_call(
            client, url, "eth_getCode", [LOCAL_EVM_HTLC, "latest"], doing=_INSTALLING
        ) not in ("0x", ""):
            return
        creation = "0x" + htlc_client.bytecode().hex()
        runtime = await node_call(
            client, url, "eth_call", [{"data": creation}, "latest"], doing=_INSTALLING
        )
        await node_call(client, url, "anvil_setCode", [LOCAL_EVM_HTLC, runtime], doing=_INSTALLING)


async def install_local_token(url: str, address: str) -> None:
    """Put the local USDC's runtime code at `address` on the anvil at `url` (nothing to do
    if it is there already)."""
    doing = "installing the local token"
    async with httpx.AsyncClient(timeout=10) as client:
        if await node_call(client, url, "eth_getCode", [address, "latest"], doing=doing) not in (
            "0x",
            "",
        ):
            return
        creation = json.loads(TOKEN_ARTIFACT.read_text(encoding="utf-8"))["bytecode"]
        runtime = await node_call(
            client, url, "eth_call", [{"data": creation}, "latest"], doing=doing
        )
        await node_call(client, url, "anvil_setCode", [address, runtime], doing=doing)


async def top_up_local_token(url: str, token: str, to: str, amount: int) -> None:
    """Mint to `to` what it lacks of `amount` base units of the local token at `token`."""
    doing = f"minting local token {token}"
    owner = to_checksum_address(to)
    query = {"to": token, "data": "0x" + (_BALANCE_OF + encode(["address"], [owner])).hex()}
    async with httpx.AsyncClient(timeout=10) as client:
        held = int(await node_call(client, url, "eth_call", [query, "latest"], doing=doing), 16)
    if held < amount:
        data = _MINT + encode(["address", "uint256"], [owner, amount - held])
        await send_as(url, MINTER, token, data, doing=doing)


async def send_as(url: str, sender: str, to: str, data: bytes, *, doing: str) -> None:
    """Run a call of `data` to `to` from `sender`, impersonated on the anvil at `url`, and
    wait until it is mined; ChainError if it reverts."""
    async with httpx.AsyncClient(timeout=10) as client:

        async def rpc(method: str, params: list[object]) -> str:
            return await node_call(client, url, method, params, doing=doing)

        await rpc("anvil_impersonateAccount", [sender])
        await rpc("anvil_setBalance", [sender, hex(10**20)])
        sent = await rpc(
            "eth_sendTransaction", [{"from": sender, "to": to, "data": "0x" + data.hex()}]
        )
        # anvil mines each transaction at once, but may answer eth_sendTransaction before
        # the block is sealed: ask a few times.
        for _ in range(50):
            receipt = await node_result(
                client, url, "eth_getTransactionReceipt", [sent], doing=doing
            )
            if receipt is not None:
                if receipt.get("status") != "0x1":
                    raise ChainError(f"{doing} on {url} reverted (transaction {sent})")
                return
            await asyncio.sleep(0.02)
        raise ChainError(f"{doing} on {url}: transaction {sent} was not mined in 1 s")
