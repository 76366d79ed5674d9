"""The local USDC of a devnet Solana: an SPL Token mint with 6 decimals at an address
derived from the symbol, and agents' associated token accounts holding it.

Both are written as SPL Token accounts in the program's own layout (``spl-token``'s
``state.rs``: a Mint of 82 bytes, an Account of 165) through the LiteSVM server's
``covenant_setAccount``, as ``requestAirdrop`` funds lamports: nothing is signed, and the
SPL Token program then moves them as it moves any token.
"""

from __future__ import annotations

import base64
import hashlib

import httpx
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address

from chains.devnet._fund import node_call, node_result
from config.errors import ChainError

DECIMALS = 6
MINT_SIZE, ACCOUNT_SIZE = 82, 165
_NONE = bytes(4)  # COption::None
_SOME = (1).to_bytes(4, "little")
_INITIALIZED = 1


def local_mint(symbol: str) -> str:
    """Where the local mint of `symbol` (an asset declared `spl_mint: local`) lives."""
    seed = hashlib.sha256(f"covenant:token:{symbol}:v1".encode()).digest()
    return str(Pubkey.from_bytes(seed))


def mint_data(supply: int, authority: Pubkey) -> bytes:
    """A Mint: mint authority, supply, decimals, initialized, no freeze authority."""
    return (
        _SOME
        + bytes(authority)
        + supply.to_bytes(8, "little")
        + bytes([DECIMALS, 1])
        + _NONE
        + bytes(32)
    )


def token_account_data(mint: Pubkey, owner: Pubkey, amount: int) -> bytes:
    """An initialized token Account of `owner` holding `amount` of `mint`."""
    return (
        bytes(mint)
        + bytes(owner)
        + amount.to_bytes(8, "little")
        + _NONE
        + bytes(32)  # no delegate
        + bytes([_INITIALIZED])
        + _NONE
        + bytes(8)  # not a native (wrapped SOL) account
        + bytes(8)  # delegated amount
        + _NONE
        + bytes(32)  # no close authority
    )


async def install_local_mint(url: str, mint: str) -> None:
    """Write the mint at `mint` on the server at `url` unless it exists already."""
    doing = "installing the local mint"
    async with httpx.AsyncClient(timeout=10) as client:
        info = await _account(client, url, mint, doing)
        if info is not None:
            return
        # The mint's authority is the mint's own address, which has no key: only this
        # devnet faucet creates tokens.
        await _write(client, url, mint, mint_data(0, Pubkey.from_string(mint)), doing)


async def top_up_local_mint(url: str, mint: str, owner: str, amount: int) -> None:
    """Give `owner`'s associated token account of `mint` (created if missing) what it
    lacks of `amount` base units, adding the same to the mint's supply."""
    doing = f"funding local mint {mint}"
    mint_key, owner_key = Pubkey.from_string(mint), Pubkey.from_string(owner)
    ata = str(get_associated_token_address(owner_key, mint_key, TOKEN_PROGRAM_ID))
    async with httpx.AsyncClient(timeout=10) as client:
        mint_account = await _account(client, url, mint, doing)
        if mint_account is None:
            raise ChainError(f"local mint {mint} is not installed on {url}; run `devnet up`")
        held = await _account(client, url, ata, doing)
        balance = 0 if held is None else int.from_bytes(held[64:72], "little")
        if balance >= amount:
            return
        supply = int.from_bytes(mint_account[36:44], "little") + amount - balance
        await _write(client, url, ata, token_account_data(mint_key, owner_key, amount), doing)
        await _write(client, url, mint, mint_data(supply, mint_key), doing)


async def _account(client: httpx.AsyncClient, url: str, address: str, doing: str) -> bytes | None:
    params: list[object] = [address, {"encoding": "base64", "commitment": "confirmed"}]
    info = await node_result(client, url, "getAccountInfo", params, doing=doing)
    value = info.get("value") if isinstance(info, dict) else None
    return None if value is None else base64.b64decode(value["data"][0])


async def _write(
    client: httpx.AsyncClient, url: str, address: str, data: bytes, doing: str
) -> None:
    rent = int(
        await node_call(client, url, "getMinimumBalanceForRentExemption", [len(data)], doing=doing)
    )
    fields = {
        "lamports": rent,
        "owner": str(TOKEN_PROGRAM_ID),
        "data": base64.b64encode(data).decode(),
    }
    await node_call(client, url, "covenant_setAccount", [address, fields], doing=doing)
