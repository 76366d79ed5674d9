"""Judging a crash scenario from the chains alone (tests/atomic/_crash_harness.py).

Reads each escrow's state (the HTLC contract's ``swaps(...)``; the Solana escrow account,
and the HTLC instructions that touched it once a settle closed it), every transaction an
account paid for (EVM blocks and receipts: gasUsed x effectiveGasPrice; Solana
``getSignaturesForAddress`` and each transaction's ``meta.fee``), and anvil's nonces and
txpool; then reconciles balances to the wei and the lamport.
"""

from __future__ import annotations

import base64
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from solders.transaction import VersionedTransaction

from chains.atomic.base import Leg
from chains.families.evm import htlc_client as evm_client
from chains.families.solana import htlc_client as program
from tests.atomic._env import EvmNode, SolanaNode

_clients = threading.local()


def post(url: str, body: Any) -> Any:
    """POST a JSON-RPC request (or batch) on this thread's keep-alive connection."""
    client = getattr(_clients, "client", None)
    if client is None:
        client = _clients.client = httpx.Client(timeout=60)
    return client.post(url, json=body).json()


def rpc(url: str, method: str, params: list[Any]) -> Any:
    """One JSON-RPC call; raises RuntimeError on an error answer."""
    answer = post(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


class EvmScan:
    """Every transaction of one anvil, by sender, scanned block by block as it grows."""

    def __init__(self, node: EvmNode) -> None:
        self.node = node
        self._next = 0
        self._sent: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()

    def sent_by(self, address: str) -> list[str]:
        """Hashes of the mined transactions `address` sent."""
        with self._lock:
            head = int(rpc(self.node.url, "eth_blockNumber", []), 16)
            for first in range(self._next, head + 1, 200):
                batch = [
                    {
                        "jsonrpc": "2.0",
                        "id": n,
                        "method": "eth_getBlockByNumber",
                        "params": [hex(n), True],
                    }
                    for n in range(first, min(first + 200, head + 1))
                ]
                for answer in post(self.node.url, batch):
                    for tx in answer["result"]["transactions"]:
                        self._sent[tx["from"].lower()].append(tx["hash"])
            self._next = head + 1
            return list(self._sent[address.lower()])


@dataclass
class ChainView:
    """Read-only views of the shared chains, by chain name."""

    evm: dict[str, EvmNode]
    sol: SolanaNode
    scans: dict[str, EvmScan] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scans = {name: EvmScan(node) for name, node in self.evm.items()}

    def balance(self, chain: str, address: str) -> int:
        node = self.evm.get(chain)
        if node is not None:
            return int(rpc(node.url, "eth_getBalance", [address, "latest"]), 16)
        return self.sol.balance(address)

    def _sol(self, method: str, params: list[Any]) -> Any:
        return rpc(self.sol.url, method, params)

    def fees(self, chain: str, address: str) -> int:
        """What `address` paid for every transaction it sent that landed: gasUsed x
        effectiveGasPrice of each receipt, or each Solana transaction's meta.fee."""
        node = self.evm.get(chain)
        if node is not None:
            fees = 0
            for tx_id in self.scans[chain].sent_by(address):
                receipt = rpc(node.url, "eth_getTransactionReceipt", [tx_id])
                fees += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
            return fees
        total = 0
        for tx in self._sol_transactions(address):
            if str(tx["tx"].message.account_keys[0]) == address:  # the fee payer
                total += int(tx["meta"]["fee"])
        return total

    def _sol_transactions(self, address: str) -> list[dict[str, Any]]:
        """Every landed transaction that names `address`, oldest first."""
        infos: list[dict[str, Any]] = []
        before = None
        while True:
            options = {"limit": 1000, **({"before": before} if before else {})}
            page = self._sol("getSignaturesForAddress", [address, options])
            infos += page
            if len(page) < 1000:
                break
            before = page[-1]["signature"]
        found = []
        for info in reversed(infos):
            got = self._sol("getTransaction", [info["signature"], {"encoding": "base64"}])
            raw = base64.b64decode(got["transaction"][0])
            found.append({"tx": VersionedTransaction.from_bytes(raw), "meta": got["meta"]})
        return found

    def escrow(self, leg: Leg) -> str:
        """'never', 'locked', 'claimed' or 'refunded', as the chain records the escrow."""
        node = self.evm.get(leg.chain)
        if node is not None:
            call = {"to": node.contract, "data": "0x" + _swaps_calldata(leg).hex()}
            answer = bytes.fromhex(rpc(node.url, "eth_call", [call, "latest"])[2:])
            state = evm_client.decode_swap(answer).state
            return ("never", "locked", "claimed", "refunded")[int(state)]
        if self.sol.account(leg.locator):
            return "locked"  # a settle closes the escrow account
        outcome = "never"
        for tx in self._sol_transactions(leg.locator):
            if tx["meta"]["err"] is None:
                outcome = _sol_instruction(tx["tx"], leg.locator) or outcome
        return outcome

    def nonce_problems(self, chain: str, address: str) -> list[str]:
        """A nonce gap or a stuck transaction of `address`: anvil's pending nonce ahead of
        its latest, or anything of the address left in its txpool."""
        url = self.evm[chain].url
        latest = int(rpc(url, "eth_getTransactionCount", [address, "latest"]), 16)
        pending = int(rpc(url, "eth_getTransactionCount", [address, "pending"]), 16)
        pool = rpc(url, "txpool_content", [])
        stuck = [
            f"{queue} nonce {nonce}"
            for queue in ("pending", "queued")
            for sender, txs in pool.get(queue, {}).items()
            if sender.lower() == address.lower()
            for nonce in txs
        ]
        problems = (
            [f"{chain} {address}: pending nonce {pending} != latest {latest}"]
            if pending != latest
            else []
        )
        return problems + [f"{chain} {address}: txpool holds {item}" for item in stuck]


def _swaps_calldata(leg: Leg) -> bytes:
    """``swaps(...)`` of the leg's escrow: keyed by (sender, id) in the contract since
    issue #13, by id alone before (so the harness also judges the original code)."""
    calldata: Any = evm_client.swaps_calldata
    swap_id = bytes.fromhex(leg.locator.removeprefix("0x"))
    try:
        return bytes(calldata(swap_id, sender=leg.sender))
    except TypeError:
        return bytes(calldata(swap_id))


_INSTRUCTIONS = {
    program.LOCK_DISCRIMINATOR: "locked",
    program.CLAIM_DISCRIMINATOR: "claimed",
    program.REFUND_DISCRIMINATOR: "refunded",
}


def _sol_instruction(tx: VersionedTransaction, escrow: str) -> str | None:
    """What the HTLC instruction of `tx` that names `escrow` did to it, if any."""
    keys = tx.message.account_keys
    outcome = None
    for instruction in tx.message.instructions:
        accounts = [str(keys[i]) for i in instruction.accounts]
        if keys[instruction.program_id_index] == program.LOCAL_PROGRAM_ID and escrow in accounts:
            outcome = _INSTRUCTIONS.get(bytes(instruction.data[:8]), outcome)
    return outcome


def swap_losses(legs: Sequence[tuple[Leg, str]]) -> list[Leg]:
    """The legs of a swap (the maker's lock, then the taker's) that were claimed while
    the other one was not: what the side that locked them gave and never got back."""
    (made, made_state), (taken, taken_state) = legs
    lost = [made] if made_state == "claimed" and taken_state != "claimed" else []
    return lost + ([taken] if taken_state == "claimed" and made_state != "claimed" else [])


def plan_outcome(states: Sequence[str]) -> str:
    """A plan's outcome from its escrows' states (all-or-nothing, or not)."""
    if "locked" in states:
        return "open"
    if all(state == "claimed" for state in states):
        return "claimed"
    if "claimed" in states:
        return "broken"
    return "refunded" if "refunded" in states else "cancelled"


def reconcile(
    start: dict[tuple[str, str], int],
    legs: Iterable[tuple[Leg, str]],
    fees: dict[tuple[str, str], int],
    actual: dict[tuple[str, str], int],
    rent: int,
) -> dict[tuple[str, str], int]:
    """(chain, address) -> actual minus expected balance, for every account that is off.

    expected = start - fees - what it locked that was claimed or is still locked + what
    it claimed; a Solana escrow also holds the rent deposit its sender paid, which a
    claim moves to the recipient and a refund gives back. A refunded or never-locked leg
    moves nothing. To the wei and the lamport: nothing else may move an agent's funds.
    """
    expected = {key: balance - fees.get(key, 0) for key, balance in start.items()}
    for leg, state in legs:
        moved = leg.amount + (rent if leg.chain == "sol" else 0)
        if state in ("claimed", "locked") and (leg.chain, leg.sender) in expected:
            expected[(leg.chain, leg.sender)] -= moved
        if state == "claimed" and (leg.chain, leg.recipient) in expected:
            expected[(leg.chain, leg.recipient)] += moved
    return {key: actual[key] - value for key, value in expected.items() if actual[key] != value}
