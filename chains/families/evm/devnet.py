"""The EVM family's local chains: anvil nodes, their faucet, and the HTLC installed at a
fixed address.

The contract's runtime code (obtained by executing the committed creation code in an
``eth_call``) is placed at :data:`LOCAL_EVM_HTLC` with ``anvil_setCode``, so the address
is the same on every devnet and survives restarts without a deployer account or nonce.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import httpx
from eth_utils.address import to_checksum_address

from chains.devnet._fund import node_call
from chains.families.evm import htlc_client

if TYPE_CHECKING:
    from chains.devnet._fund import NodeCall

_INSTALLING = "installing the HTLC"

LOCAL_EVM_HTLC = to_checksum_address(hashlib.sha256(b"covenant:htlc:evm:v1").digest()[:20])
"""Where `devnet up` installs the HTLC contract on every local EVM chain."""


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
