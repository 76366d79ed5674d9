"""Deploy contracts for EVM tests (signed here with eth_account, sent via the adapter)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_account import Account
from eth_typing import HexStr
from eth_utils.address import to_checksum_address

from chains.families.evm.adapter import EvmAdapter

ROOT = Path(__file__).resolve().parents[2]

# Runtime code that reverts with its own calldata: CALLDATACOPY(0,0,size); REVERT(0,size).
# Calling it with the encoding of Error(string) / Panic(uint256) / a custom error makes
# it revert with exactly that data.
ECHO_REVERT_RUNTIME = bytes.fromhex("366000600037366000fd")


def init_code(runtime: bytes) -> bytes:
    return (
        bytes([0x60, len(runtime), 0x60, 0x0C, 0x60, 0, 0x39, 0x60, len(runtime), 0x60, 0, 0xF3])
        + runtime
    )


async def deploy(adapter: EvmAdapter, key: str | bytes, code: bytes) -> str:
    account = Account.from_key(key)
    w3 = adapter._w3
    nonce = await w3.eth.get_transaction_count(account.address, "pending")
    block = await w3.eth.get_block("latest")
    tx = {
        "type": 2,
        "chainId": adapter.chain.chain_id,
        "nonce": nonce,
        "gas": 3_000_000,
        "maxFeePerGas": 2 * block["baseFeePerGas"] + 10**9,
        "maxPriorityFeePerGas": 10**9,
        "value": 0,
        "data": code,
    }
    tx_hash = await adapter.broadcast(bytes(account.sign_transaction(tx).raw_transaction))
    receipt = await w3.eth.wait_for_transaction_receipt(HexStr(tx_hash), timeout=30)
    assert receipt["status"] == 1
    return to_checksum_address(str(receipt["contractAddress"]))


def token_artifact() -> dict[str, Any]:
    artifact: dict[str, Any] = json.loads((ROOT / "chains/htlc/evm/TestToken.json").read_text())
    return artifact


async def deploy_token(adapter: EvmAdapter, key: str | bytes) -> tuple[str, tuple[Any, ...]]:
    artifact = token_artifact()
    args = encode(["string", "string", "bool"], ["Test", "TST", True])
    code = bytes.fromhex(artifact["bytecode"].removeprefix("0x")) + args
    return await deploy(adapter, key, code), tuple(artifact["abi"])
