"""Install the project's own HTLC builds on local chains (`htlc: local`).

EVM: the contract's runtime code (obtained by executing the committed creation code in
an ``eth_call``) is placed at a fixed address with ``anvil_setCode``, so the address is
the same on every devnet and survives restarts without a deployer account or nonce.
Solana: the LiteSVM server process loads the committed ELF at the well-known local
program id when it starts (``--program``).
"""

from __future__ import annotations

import hashlib

import httpx
from eth_utils.address import to_checksum_address

from chains.htlc import evm_client
from chains.htlc.solana.build import ELF_PATH
from chains.htlc.solana_client import LOCAL_PROGRAM_ID
from config.errors import ChainError, RpcUnreachable
from config.models import EvmChain, SolanaChain

LOCAL_EVM_HTLC = to_checksum_address(hashlib.sha256(b"covenant:htlc:evm:v1").digest()[:20])
"""Where `devnet up` installs the HTLC contract on every local EVM chain."""


def htlc_address(chain: EvmChain | SolanaChain) -> str | None:
    """The chain's HTLC contract address or program id; None if it has none."""
    if chain.htlc != "local":
        return chain.htlc
    return LOCAL_EVM_HTLC if isinstance(chain, EvmChain) else str(LOCAL_PROGRAM_ID)


def solana_program_args(chain: SolanaChain) -> list[str]:
    """Arguments that make the devnet Solana server load the local HTLC program."""
    return ["--program", f"{LOCAL_PROGRAM_ID}={ELF_PATH}"] if chain.htlc == "local" else []


async def install_evm_htlc(url: str) -> None:
    """Put the HTLC runtime code at :data:`LOCAL_EVM_HTLC` on the anvil at `url`
    (nothing to do if it is there already, e.g. from the saved chain state)."""
    async with httpx.AsyncClient(timeout=10) as client:
        if await _rpc(client, url, "eth_getCode", [LOCAL_EVM_HTLC, "latest"]) not in ("0x", ""):
            return
        creation = "0x" + evm_client.bytecode().hex()
        runtime = await _rpc(client, url, "eth_call", [{"data": creation}, "latest"])
        await _rpc(client, url, "anvil_setCode", [LOCAL_EVM_HTLC, runtime])


async def _rpc(client: httpx.AsyncClient, url: str, method: str, params: list[object]) -> str:
    try:
        reply = await client.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
    except httpx.HTTPError as exc:
        raise RpcUnreachable(f"devnet node {url} unreachable installing the HTLC: {exc}") from exc
    body = reply.json()
    if "error" in body:
        raise ChainError(f"devnet node {url} refused {method} installing the HTLC: {body['error']}")
    return str(body["result"])
