"""Shared test environment for the coordinator: two anvils with the HTLC contract, the
LiteSVM JSON-RPC server with the HTLC program, agents with real wallets, and a real
AuthorizationMint standing in for the policy engine (only tests construct one)."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.types import RPCEndpoint

from chains.atomic.base import HtlcChain
from chains.atomic.wallet import WalletParty
from chains.base import UnsignedTx
from chains.devnet.processes import free_port
from chains.families.evm import htlc_client as evm_client
from chains.families.evm._anvil import start_anvil
from chains.families.evm.adapter import EvmAdapter
from chains.families.evm.config import EvmChain
from chains.families.evm.escrow import EvmHtlc
from chains.families.solana.config import SolanaChain
from chains.signing import sign
from config.margins import ChainMargin, Margins
from wallets.authorization import Authorization, AuthorizationMint
from wallets.hd import derive_agent_keys, generate_mnemonic, seed_from_mnemonic
from wallets.operator import AgentWallet

ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
EVM_CHAINS = {"arb": 42_161, "base": 8_453}
TEST_MARGINS = Margins(
    watcher_interval=1,
    evm=ChainMargin(inclusion=2, finality=1),
    solana=ChainMargin(inclusion=2, finality=1, halt_allowance=1),
    slack=3,
    max_lock=3600,
)


@dataclass
class EvmNode:
    """One anvil with the HTLC contract deployed."""

    name: str
    chain_id: int
    url: str
    contract: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def w3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.url))

    def config(self) -> EvmChain:
        return EvmChain(
            name=self.name,
            family="evm",
            chain_id=self.chain_id,
            rpc=self.url,
            finality={"confirmations": 0},
        )

    def fund(self, address: str, wei: int) -> None:
        self.w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [address, hex(wei)])

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def mine(self) -> None:
        self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    def advance(self, seconds: int) -> None:
        self.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
        self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    def fee(self, tx_id: str) -> int:
        receipt = self.w3.eth.get_transaction_receipt(tx_id)  # type: ignore[arg-type]
        return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])

    def sender_of(self, tx_id: str) -> str:
        return str(self.w3.eth.get_transaction(tx_id)["from"])  # type: ignore[arg-type]

    def locked_events(self, swap_id: str) -> int:
        topic = (
            "0x"
            + Web3.keccak(
                text="Locked(bytes32,address,address,address,uint256,bytes32,uint256)"
            ).hex()
        )
        query: Any = {"address": self.contract, "fromBlock": 0, "topics": [topic, swap_id]}
        logs = self.w3.eth.get_logs(query)
        return len(logs)


def start_evm_node(name: str, chain_id: int, log: Path | None = None) -> EvmNode:
    port = free_port()
    process = start_anvil(chain_id, port, log=log)
    url = f"http://127.0.0.1:{port}"
    w3 = Web3(Web3.HTTPProvider(url))
    deployer = Account.from_key(ANVIL_KEY)
    tx: Any = {
        "from": deployer.address,
        "data": evm_client.bytecode(),
        "gas": 3_000_000,
        "nonce": w3.eth.get_transaction_count(deployer.address),
        "chainId": chain_id,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
    }
    signed = deployer.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    return EvmNode(name, chain_id, url, str(receipt["contractAddress"]), process)


def make_wallet(name: str, mnemonic: str | None = None, index: int = 0) -> AgentWallet:
    seed = seed_from_mnemonic(mnemonic or generate_mnemonic(12))
    return AgentWallet(name, derive_agent_keys(seed, index))


@dataclass
class Authorizer:
    """The policy engine's role in tests: mint an authorization per transaction, and
    remember what it authorized so tests can assert on it."""

    mint: AuthorizationMint = field(default_factory=AuthorizationMint)
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def __call__(
        self, agent: str, unsigned: UnsignedTx, purpose: str, plan_id: str, leg: Any = None
    ) -> Authorization:
        from config.errors import PolicyViolation

        if purpose in self.refuse:
            raise PolicyViolation(f"test policy refuses {purpose}")
        self.seen.append((agent, purpose, plan_id))
        return self.mint.mint(agent, unsigned.digest, timedelta(minutes=5))


def party(wallet: AgentWallet, authorizer: Authorizer) -> WalletParty:
    """A party that signs, as the daemon's gate does, only what `authorizer` minted."""
    verifier = authorizer.mint.verifier

    def sign_tx(unsigned: UnsignedTx, authorization: Authorization, co: Sequence[bytes]) -> bytes:
        return sign(wallet, verifier, unsigned, authorization, co)

    return WalletParty(wallet, sign_tx=sign_tx)


async def evm_htlc(node: EvmNode, margins: Margins = TEST_MARGINS) -> EvmHtlc:
    adapter = await EvmAdapter.connect(node.config(), url=node.url)
    return EvmHtlc(adapter, node.contract, margin=margins.of(node.name, "evm"))


async def close_all(chains: dict[str, HtlcChain]) -> None:
    for chain in chains.values():
        await chain.close()
        await chain.adapter.close()


async def local_usdc(url: str, owners: Sequence[str], amount: int, *, label: str) -> str:
    """A 6-decimal local mint named `label` on the LiteSVM server at `url`, with each
    owner topped up to `amount` (what `devnet up` does for `spl_mint: local`)."""
    from chains.families.solana.local_token import install_local_mint, local_mint, top_up_local_mint

    mint = local_mint(label)
    await install_local_mint(url, mint)
    for owner in owners:
        await top_up_local_mint(url, mint, owner, amount)
    return mint


def unique(prefix: str) -> str:
    import os

    return f"{prefix}-{hashlib.sha256(os.urandom(8)).hexdigest()[:10]}"


CONFIRMED = {"commitment": "confirmed"}


def solana_config(url: str, commitment: str = "confirmed") -> SolanaChain:
    return SolanaChain(
        name="sol",
        family="solana",
        cluster="localnet",
        rpc=url,
        finality={"commitment": commitment},
    )


@dataclass
class SolanaNode:
    """The LiteSVM JSON-RPC server process with the HTLC program."""

    url: str
    process: subprocess.Popen[bytes] | None = None

    def rpc(self, method: str, params: list[Any]) -> Any:
        import httpx

        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        answer = httpx.post(self.url, json=body, timeout=10).json()
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def fund(self, address: str, lamports: int) -> None:
        self.rpc("requestAirdrop", [address, lamports])

    # The newest block's state: the node, asked for no commitment, answers finalized.
    def balance(self, address: str) -> int:
        return int(self.rpc("getBalance", [address, CONFIRMED])["value"])

    def account(self, address: str) -> dict[str, Any] | None:
        """getAccountInfo's value (base64 data), or None."""
        value = self.rpc("getAccountInfo", [address, {**CONFIRMED, "encoding": "base64"}])
        return value["value"]  # type: ignore[no-any-return]

    def config(self, commitment: str = "confirmed") -> SolanaChain:
        return solana_config(self.url, commitment)


def start_solana_node(log: Path | None = None) -> SolanaNode:
    import sys

    from chains.devnet.processes import wait_for_port

    port = free_port()
    output = log.open("ab") if log is not None else subprocess.DEVNULL
    script = Path(__file__).resolve().parent / "_solana_server.py"
    process = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_port(port, process, timeout=60)
    return SolanaNode(f"http://127.0.0.1:{port}", process)


async def solana_htlc(
    node: SolanaNode, margins: Margins = TEST_MARGINS, commitment: str = "confirmed"
) -> HtlcChain:
    from chains.families.solana.adapter import SolanaAdapter
    from chains.families.solana.escrow import SolanaHtlc
    from chains.families.solana.htlc_client import LOCAL_PROGRAM_ID

    adapter = await SolanaAdapter.connect(node.config(commitment), url=node.url)
    return SolanaHtlc(adapter, str(LOCAL_PROGRAM_ID), margin=margins.of("sol", "solana"))


async def remaining(coordinator: Any, leg: Any) -> int:
    """Seconds left before `leg`'s deadline on its own chain's clock."""
    return int(leg.deadline - await coordinator.clock(coordinator.chain(leg.chain)))
