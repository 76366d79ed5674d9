"""Pyth price-update accounts on Solana: reading one, and the local account `devnet up`
writes and `devnet price` moves.

The layout is the Pyth Solana receiver's ``PriceUpdateV2`` Anchor account
(pyth-network/pyth-crosschain, ``pyth_solana_receiver_sdk::price_update``), Borsh-encoded
after Anchor's 8-byte discriminator ``sha256("account:PriceUpdateV2")[:8]``:

    write_authority    Pubkey (32)
    verification_level enum: 0 = Partial {num_signatures: u8}, 1 = Full
    price_message      feed_id [u8; 32], price i64, conf u64, exponent i32,
                       publish_time i64, prev_publish_time i64, ema_price i64, ema_conf u64
    posted_slot        u64

Only an account owned by the receiver program (the feed's `receiver`), with that
discriminator, fully verified (Partial means fewer guardian signatures than the quorum,
which Pyth's own SDK refuses by default) and a positive price is read. Price and
confidence are the integers times ``10**exponent``, exact.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
from solders.pubkey import Pubkey

from chains.devnet._fund import node_call
from chains.families.solana._backends import account_data
from config.errors import ChainError
from config.prices import PYTH_RECEIVER, FeedReading

if TYPE_CHECKING:
    from chains.families.solana.adapter import SolanaAdapter
    from config.prices import PythFeed

DISCRIMINATOR = hashlib.sha256(b"account:PriceUpdateV2").digest()[:8]
_MESSAGE = struct.Struct(
    "<32sqQiqqqQ"
)  # feed_id, price, conf, exponent, publish, prev, ema, ema_conf
ACCOUNT_SIZE = 8 + 32 + 2 + _MESSAGE.size + 8
"""Bytes the receiver allocates (the Partial variant is the longer one)."""
LOCAL_EXPONENT = -8
FULL, PARTIAL = 1, 0


def local_account(symbol: str) -> str:
    """Where the local price-update account of `symbol` lives on every local Solana."""
    return str(Pubkey(hashlib.sha256(f"covenant:price:pyth:{symbol}:v1".encode()).digest()))


def parse_price_update(owner: str, data: bytes, receiver: str, where: str) -> FeedReading:
    """A reading from a price-update account's owner and data; ChainError if it is not a
    verified PriceUpdateV2 of `receiver` with a positive price."""
    if owner != receiver:
        raise ChainError(
            f"{where} is owned by {owner}, not the Pyth receiver {receiver}; it is not a "
            "Pyth price update (check the account address)"
        )
    if len(data) < 8 + 32 + 1 + _MESSAGE.size + 8 or data[:8] != DISCRIMINATOR:
        raise ChainError(f"{where} is not a PriceUpdateV2 account (wrong discriminator or size)")
    level = data[40]
    if level != FULL:
        raise ChainError(
            f"{where} is only partially verified (fewer Wormhole signatures than the quorum)"
        )
    _feed, price, conf, exponent, published, _prev, _ema, _ema_conf = _MESSAGE.unpack_from(data, 41)
    if price <= 0:
        raise ChainError(f"{where} has price {price}; a price must be above zero")
    return FeedReading(
        usd=Decimal(price).scaleb(exponent),
        published_at=published,
        confidence=Decimal(conf).scaleb(exponent),
    )


async def read_pyth(adapter: SolanaAdapter, feed: PythFeed, address: str) -> FeedReading:
    """Read the price-update account at `address` through `adapter`."""
    where = f"pyth account {address} on {feed.chain}"
    options = {"encoding": "base64", "commitment": "confirmed"}
    result = await adapter.read("getAccountInfo", [address, options])
    account = account_data(result["value"])
    if account is None:
        raise ChainError(f"{where} does not exist; check the address and the cluster")
    return parse_price_update(account.owner, account.data, feed.receiver, where)


def encode_price_update(
    price: int, conf: int, exponent: int, published_at: int, *, level: int = FULL
) -> bytes:
    """A PriceUpdateV2 account's data (for local chains and tests), padded to the size
    the receiver allocates."""
    variant = bytes([FULL]) if level == FULL else bytes([PARTIAL, 1])
    message = _MESSAGE.pack(
        bytes(32), price, conf, exponent, published_at, published_at, price, conf
    )
    data = DISCRIMINATOR + bytes(32) + variant + message + (0).to_bytes(8, "little")
    return data.ljust(ACCOUNT_SIZE, b"\0")


async def set_local_pyth(url: str, symbol: str, usd: Decimal, published_at: int) -> str:
    """Write the local price-update account of `symbol` on the LiteSVM server at `url`
    (owned by the real receiver id, confidence 0.1% of the price); returns its address."""
    scaled = usd.scaleb(-LOCAL_EXPONENT)
    if scaled != scaled.to_integral_value() or scaled <= 0:
        raise ChainError(f"price {usd} must be above zero with at most {-LOCAL_EXPONENT} decimals")
    price = int(scaled)
    data = encode_price_update(price, price // 1000, LOCAL_EXPONENT, published_at)
    address = local_account(symbol)
    doing = f"moving the local {symbol} price account"
    async with httpx.AsyncClient(timeout=10) as client:
        rent = int(
            await node_call(
                client, url, "getMinimumBalanceForRentExemption", [len(data)], doing=doing
            )
        )
        fields = {"lamports": rent, "owner": PYTH_RECEIVER, "data": base64.b64encode(data).decode()}
        await node_call(client, url, "covenant_setAccount", [address, fields], doing=doing)
    return address
