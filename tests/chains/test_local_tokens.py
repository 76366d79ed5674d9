"""Local tokens: `erc20: local` and `spl_mint: local` resolve to the tokens `devnet up`
installs (OpenZeppelin's ERC-20 on anvil, an SPL Token mint on the LiteSVM server) and
fund, and the real token programs move them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address, transfer_checked
from spl.token.models import TransferCheckedParams

from chains.connect import connect
from chains.devnet import manager
from chains.families.evm.aggregator import build as aggregator_build
from chains.families.evm.devnet import local_token_address, send_as
from chains.families.evm.token import build as token_build
from chains.families.solana.local_token import (
    ACCOUNT_SIZE,
    MINT_SIZE,
    local_mint,
    mint_data,
    token_account_data,
)
from chains.htlc.evm.build import solc_available
from config.errors import ChainError, ConfigError
from config.loader import load_deployment
from tests.chains.conftest import needs_anvil

EVM_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER_EVM = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
SOL_ADDRESS = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"

DEPLOYMENT = """
version: 1
name: tokentest
data_dir: data
operator: {name: op}
chains:
  - {name: l2-a, family: evm, chain_id: 31337, rpc: local, local: {fund_tokens: "250"}}
  - {name: sol, family: solana, cluster: localnet, rpc: local, local: {fund_tokens: "40"}}
assets:
  - {symbol: USDC, chain: l2-a, erc20: local, decimals: 6}
  - {symbol: USDC, chain: sol, spl_mint: local, decimals: 6}
planners:
  - {name: s, kind: scripted}
"""


def test_local_resolves_to_the_family_token(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(DEPLOYMENT, encoding="utf-8")
    deployment = load_deployment(path)
    assert deployment.assets[0].erc20 == local_token_address("USDC")
    assert deployment.assets[1].spl_mint == local_mint("USDC")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('rpc: local, local: {fund_tokens: "250"}', 'rpc: "http://127.0.0.1:9"'), "rpc: local"),
        (("erc20: local, decimals: 6", "erc20: local, decimals: 18"), "has 6 decimals"),
    ],
)
def test_local_token_misuse_is_refused(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(DEPLOYMENT.replace(*change), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_deployment(path)


@needs_anvil
@pytest.mark.anvil
@pytest.mark.slow
async def test_devnet_up_installs_and_tops_up_local_tokens(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(DEPLOYMENT, encoding="utf-8")
    deployment = load_deployment(path)
    usdc_evm, usdc_sol = local_token_address("USDC"), local_mint("USDC")
    try:
        await manager.up(deployment, fund=[EVM_ADDRESS, SOL_ADDRESS])
        await manager.up(deployment, fund=[EVM_ADDRESS, SOL_ADDRESS])  # tops up, adds nothing
        evm, sol = deployment.chain("l2-a"), deployment.chain("sol")
        async with await connect(evm, data_dir=deployment.data_dir) as adapter:
            assert await adapter.balance(EVM_ADDRESS, usdc_evm) == 250 * 10**6
            url = manager.local_url(evm, deployment.data_dir or "")
            assert url is not None
            assert await _call(url, usdc_evm, "0x313ce567") == 6  # decimals()
            # OpenZeppelin's transfer runs: the funded account can pay.
            transfer = bytes.fromhex("a9059cbb") + bytes(12) + bytes.fromhex(OTHER_EVM[2:])
            await send_as(url, EVM_ADDRESS, usdc_evm, transfer + (7).to_bytes(32, "big"), doing="t")
            assert await adapter.balance(OTHER_EVM, usdc_evm) == 7
            too_much = transfer + (10**12).to_bytes(32, "big")
            with pytest.raises(ChainError, match="reverted"):  # negative control
                await send_as(url, EVM_ADDRESS, usdc_evm, too_much, doing="overdraw")
        async with await connect(sol, data_dir=deployment.data_dir) as adapter:
            assert await adapter.balance(SOL_ADDRESS, usdc_sol) == 40 * 10**6
    finally:
        manager.down(deployment)


async def _call(url: str, to: str, data: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [{"to": to, "data": data}]}
    async with httpx.AsyncClient(timeout=10) as client:
        return int((await client.post(url, json=body)).json()["result"], 16)


def test_spl_token_program_moves_the_written_accounts() -> None:
    """The mint and token account bytes are the SPL Token program's own layout: its
    TransferChecked (which checks mint, decimals, owner and balance) accepts them."""
    svm = LiteSVM()
    owner, payer = Keypair(), Keypair()
    svm.airdrop(payer.pubkey(), 10**9)
    mint = Pubkey.from_string(local_mint("USDC"))
    rent = svm.minimum_balance_for_rent_exemption
    from solders.account import Account

    svm.set_account(mint, Account(rent(MINT_SIZE), mint_data(100, mint), TOKEN_PROGRAM_ID, False))
    source = get_associated_token_address(owner.pubkey(), mint)
    target = get_associated_token_address(payer.pubkey(), mint)
    for address, holder, amount in ((source, owner, 100), (target, payer, 0)):
        data = token_account_data(mint, holder.pubkey(), amount)
        svm.set_account(address, Account(rent(ACCOUNT_SIZE), data, TOKEN_PROGRAM_ID, False))

    def send(amount: int) -> object:
        params = TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=source,
            mint=mint,
            dest=target,
            owner=owner.pubkey(),
            amount=amount,
            decimals=6,
        )
        svm.expire_blockhash()
        message = Message.new_with_blockhash(
            [transfer_checked(params)], payer.pubkey(), svm.latest_blockhash()
        )
        return svm.send_transaction(VersionedTransaction(message, [payer, owner]))

    result = send(30)
    assert not hasattr(result, "err"), result
    balance = svm.get_account(target)
    assert balance is not None
    assert int.from_bytes(balance.data[64:72], "little") == 30
    assert hasattr(send(71), "err")  # negative control: more than the account holds


@pytest.mark.skipif(not solc_available(), reason="needs node and the pinned npm solc (npm ci)")
@pytest.mark.parametrize("build", [token_build, aggregator_build])
def test_npm_contract_artifacts_match_their_sources(build: Any) -> None:
    """The committed artifacts are what the pinned solc makes of the pinned packages."""
    assert build.main(["--check"]) == 0
