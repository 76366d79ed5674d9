"""A Solana ledger on LiteSVM with real block heights, blockhash expiry and commitment.

LiteSVM executes transactions exactly like a validator's bank but has no clock of its
own: it never produces blocks and accepts only its latest blockhash. This ledger adds
what an RPC client relies on: a block every `block_time` seconds with a fresh blockhash,
each valid for 150 blocks (`lastValidBlockHeight`), signature statuses that become
`finalized` `finality_depth` blocks after landing, account reads at `finalized`
commitment that show each account as it was `finality_depth` blocks ago, and transactions
accepted with ``skipPreflight`` that silently never land when their blockhash is unknown
or expired, as on mainnet. It backs both the JSON-RPC server process and the in-process
adapter.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from solders.account import Account
from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import (
    FailedTransactionMetadata,
    InnerInstruction,
    TransactionMetadata,
)

BLOCKHASH_VALID_BLOCKS = 150
MAX_CATCH_UP = 300


class RpcFailure(Exception):
    """A JSON-RPC error object: `code`, `message` and optional `data`."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


@dataclass
class _Landed:
    slot: int
    err: Any
    raw: bytes = b""
    logs: tuple[str, ...] = ()
    fee: int = 0
    at: int = 0
    # getTransaction's meta.innerInstructions, already in the RPC's JSON form.
    inner: tuple[dict[str, Any], ...] = ()


@dataclass
class SvmLedger:
    """LiteSVM plus blocks, blockhash lifetimes, statuses and test controls."""

    block_time: float = 0.4
    finality_depth: int = 32
    svm: LiteSVM = field(default_factory=LiteSVM)
    genesis_hash: str = field(default_factory=lambda: str(Hash.new_unique()))
    height: int = 1
    hold: bool = False
    held: list[bytes] = field(default_factory=list)
    _blockhashes: dict[str, int] = field(default_factory=dict)
    _landed: dict[str, _Landed] = field(default_factory=dict)
    # Signatures touching each account, oldest first (getSignaturesForAddress).
    _history: dict[str, list[str]] = field(default_factory=dict)
    # Each written account's states, oldest first, with the height each was written at:
    # what a `finalized` read serves. An account never written here is as at genesis.
    _versions: dict[str, list[tuple[int, Account | None]]] = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic)
    _skipped: int = 0

    def __post_init__(self) -> None:
        # The ledger checks blockhash lifetimes itself (150 blocks), so LiteSVM's own
        # "latest blockhash only" check is off.
        self.svm.with_blockhash_check(False)
        self._blockhashes[str(self.svm.latest_blockhash())] = self.height + BLOCKHASH_VALID_BLOCKS

    # -- blocks ------------------------------------------------------------------------

    def tick(self) -> None:
        """Produce the blocks that wall-clock time says are due."""
        due = 1 + self._skipped + int((time.monotonic() - self._started) / self.block_time)
        if due - self.height > MAX_CATCH_UP:  # idle for long: skip, like a restarted node
            self.height = due - MAX_CATCH_UP
        while self.height < due:
            self._new_block()

    def current_height(self) -> int:
        """The block height now, producing any blocks that are due first."""
        self.tick()
        return self.height

    def advance(self, blocks: int) -> int:
        """Produce `blocks` blocks now (tests: expire blockhashes without waiting)."""
        self._skipped += blocks
        self.tick()
        return self.height

    def _new_block(self) -> None:
        self.height += 1
        self.svm.expire_blockhash()
        self._blockhashes[str(self.svm.latest_blockhash())] = self.height + BLOCKHASH_VALID_BLOCKS
        clock = self.svm.get_clock()
        clock.slot = self.height
        clock.unix_timestamp = int(time.time())
        self.svm.set_clock(clock)
        if len(self._blockhashes) > 2 * BLOCKHASH_VALID_BLOCKS:
            self._blockhashes = {h: v for h, v in self._blockhashes.items() if v >= self.height}

    def latest_blockhash(self) -> tuple[str, int]:
        """The newest blockhash and the last block height at which it is valid."""
        self.tick()
        blockhash = str(self.svm.latest_blockhash())
        return blockhash, self._blockhashes[blockhash]

    def blockhash_valid(self, blockhash: str) -> bool:
        """Whether a transaction with `blockhash` can still land."""
        self.tick()
        return self._blockhashes.get(blockhash, -1) >= self.height

    # -- transactions ------------------------------------------------------------------

    def send(self, raw: bytes, *, skip_preflight: bool) -> str:
        """Process `raw` (or hold it, in hold mode); returns its signature."""
        tx = _parse(raw)
        signature = str(tx.signatures[0])
        if signature in self._landed:
            return signature
        if not skip_preflight:
            self._preflight(tx)
        if self.hold:
            self.held.append(raw)
            return signature
        self._process(tx)
        return signature

    def _preflight(self, tx: VersionedTransaction) -> None:
        result = self.simulate(bytes(tx), sig_verify=True)
        if result["err"] is not None:
            raise RpcFailure(
                -32002,
                f"Transaction simulation failed: {result['err']}",
                {"err": result["err"], "logs": result["logs"]},
            )

    def _process(self, tx: VersionedTransaction) -> None:
        if not self.blockhash_valid(str(tx.message.recent_blockhash)):
            return  # a leader drops it: it never lands, and its signature stays unknown
        keys = _writable_keys(tx)
        self._keep_genesis(keys)
        result = self.svm.send_transaction(tx)
        error = None
        if isinstance(result, FailedTransactionMetadata):
            error = error_json(result.err())
            if error in ("AlreadyProcessed", "SignatureFailure", "AccountNotFound"):
                return  # rejected before execution: no fee, nothing recorded
        meta = result.meta() if isinstance(result, FailedTransactionMetadata) else result
        self._record(tx, error, meta)
        self._written(keys)  # a failed transaction still charged its fee payer

    def _record(self, tx: VersionedTransaction, error: Any, meta: TransactionMetadata) -> None:
        signature = str(tx.signatures[0])
        self._landed[signature] = _Landed(
            self.height,
            error,
            bytes(tx),
            tuple(meta.logs()),
            meta.fee(),
            at=int(time.time()),
            inner=_inner_json(meta.inner_instructions()),
        )
        for key in tx.message.account_keys:
            self._history.setdefault(str(key), []).append(signature)

    def release_held(self) -> int:
        """Process every held transaction now (those whose blockhash expired never land)."""
        held, self.held = self.held, []
        for raw in held:
            self._process(_parse(raw))
        return len(held)

    def simulate(self, raw: bytes, *, sig_verify: bool) -> dict[str, Any]:
        """Run `raw` without committing: err (RPC JSON form), logs, units consumed."""
        tx = _parse(raw)
        if not self.blockhash_valid(str(tx.message.recent_blockhash)):
            return {"err": "BlockhashNotFound", "logs": [], "unitsConsumed": 0}
        self.svm.with_sigverify(sig_verify)
        try:
            result = self.svm.simulate_transaction(tx)
        finally:
            self.svm.with_sigverify(True)
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            return {
                "err": error_json(result.err()),
                "logs": list(meta.logs()),
                "unitsConsumed": meta.compute_units_consumed(),
            }
        meta = result.meta()
        return {
            "err": None,
            "logs": list(meta.logs()),
            "unitsConsumed": meta.compute_units_consumed(),
        }

    def statuses(self, signatures: list[str]) -> list[dict[str, Any] | None]:
        """getSignatureStatuses values: None for unknown signatures."""
        self.tick()
        return [self._status(signature) for signature in signatures]

    def _status(self, signature: str) -> dict[str, Any] | None:
        landed = self._landed.get(signature)
        if landed is None:
            return None
        depth = self.height - landed.slot
        final = depth >= self.finality_depth
        return {
            "slot": landed.slot,
            "confirmations": None if final else depth,
            "err": landed.err,
            "status": {"Ok": None} if landed.err is None else {"Err": landed.err},
            "confirmationStatus": "finalized" if final else "confirmed",
        }

    def signatures_for(
        self,
        address: str,
        *,
        limit: int = 1000,
        before: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:
        """getSignaturesForAddress values: newest first, at most `limit`, strictly older
        than `before` and strictly newer than `until` when given.

        As in agave's blockstore (``get_confirmed_signatures_for_address2``): a `before`
        the node does not know yields an empty list, and an unknown `until` does not
        limit the search.
        """
        self.tick()
        newest_first = list(reversed(self._history.get(address, [])))
        if before is not None:
            if before not in self._landed:
                return []
            if before in newest_first:
                newest_first = newest_first[newest_first.index(before) + 1 :]
            else:  # a transaction that does not name `address`: older slots only
                slot = self._landed[before].slot
                newest_first = [s for s in newest_first if self._landed[s].slot < slot]
        if until is not None and until in newest_first:
            newest_first = newest_first[: newest_first.index(until)]
        return [self._signature_info(signature) for signature in newest_first[:limit]]

    def _signature_info(self, signature: str) -> dict[str, Any]:
        landed = self._landed[signature]
        status = self._status(signature)
        assert status is not None
        return {
            "signature": signature,
            "slot": landed.slot,
            "err": landed.err,
            "memo": None,
            "blockTime": landed.at,
            "confirmationStatus": status["confirmationStatus"],
        }

    def transaction(self, signature: str) -> dict[str, Any] | None:
        """getTransaction value (base64 encoding) of a landed transaction, or None."""
        landed = self._landed.get(signature)
        if landed is None or not landed.raw:
            return None
        return {
            "slot": landed.slot,
            "blockTime": landed.at,
            "version": 0,
            "transaction": [base64.b64encode(landed.raw).decode(), "base64"],
            "meta": {
                "err": landed.err,
                "status": {"Ok": None} if landed.err is None else {"Err": landed.err},
                "fee": landed.fee,
                # Balances are not kept per transaction; clients here read instructions and logs.
                "preBalances": [],
                "postBalances": [],
                "logMessages": list(landed.logs),
                "innerInstructions": [dict(inner) for inner in landed.inner],
                "preTokenBalances": [],
                "postTokenBalances": [],
                "rewards": [],
                "loadedAddresses": {"writable": [], "readonly": []},
            },
        }

    # -- accounts ----------------------------------------------------------------------

    def balance(self, address: str, commitment: str = "confirmed") -> int:
        """Lamports held by `address` at `commitment` (0 if the account does not exist)."""
        account = self._at(address, commitment)
        return 0 if account is None else int(account.lamports)

    def account(self, address: str, commitment: str = "confirmed") -> dict[str, Any] | None:
        """getAccountInfo value in base64 encoding at `commitment`, or None."""
        account = self._at(address, commitment)
        if account is None or (account.lamports == 0 and not account.data):
            return None
        return {
            "lamports": account.lamports,
            "owner": str(account.owner),
            "data": [base64.b64encode(bytes(account.data)).decode(), "base64"],
            "executable": account.executable,
            "rentEpoch": 2**64 - 1,
            "space": len(account.data),
        }

    def _at(self, address: str, commitment: str) -> Account | None:
        """`address` as the bank of `commitment` holds it: agave answers a `finalized`
        read from the highest rooted bank (``JsonRpcRequestProcessor::bank``, rpc.rs), so
        an account written fewer than `finality_depth` blocks ago shows its older state.
        Every other commitment reads the newest block, as `confirmed` does here."""
        self.tick()
        versions = self._versions.get(address)
        if commitment != "finalized" or not versions:
            return self.svm.get_account(Pubkey.from_string(address))
        rooted = self.height - self.finality_depth
        # Before the first root, the genesis state (the oldest kept) is what is rooted.
        return next((s for height, s in reversed(versions) if height <= rooted), versions[0][1])

    def _keep_genesis(self, addresses: list[str]) -> None:
        """Keep the state of accounts about to be written for the first time."""
        for address in addresses:
            if address not in self._versions:
                self._versions[address] = [(0, self.svm.get_account(Pubkey.from_string(address)))]

    def _written(self, addresses: list[str]) -> None:
        """Record the new state of `addresses`, forgetting states no read can reach (all
        but the newest rooted one)."""
        rooted = self.height - self.finality_depth
        for address in addresses:
            versions = self._versions[address]
            versions.append((self.height, self.svm.get_account(Pubkey.from_string(address))))
            newest_rooted = max(
                (i for i, (height, _) in enumerate(versions) if height <= rooted), default=0
            )
            del versions[:newest_rooted]

    def airdrop(self, address: str, lamports: int) -> str:
        """Credit `lamports` to `address`; returns the airdrop's signature."""
        self._keep_genesis([address])
        result = self.svm.airdrop(Pubkey.from_string(address), lamports)
        if isinstance(result, FailedTransactionMetadata) and "AlreadyProcessed" in str(
            result.err()
        ):
            # The same airdrop again within one block is the same transaction to LiteSVM;
            # a faucet's second airdrop is a new one, so it goes into the next block.
            self.advance(1)
            result = self.svm.airdrop(Pubkey.from_string(address), lamports)
        if isinstance(result, FailedTransactionMetadata):
            raise RpcFailure(-32603, f"airdrop failed: {error_json(result.err())}")
        signature = str(result.signature())
        self._landed[signature] = _Landed(self.height, None)
        self._written([address])
        return signature

    def minimum_rent(self, size: int) -> int:
        """Lamports that make an account of `size` data bytes rent-exempt."""
        return int(self.svm.minimum_balance_for_rent_exemption(size))

    def set_account(self, address: str, fields: dict[str, Any]) -> None:
        """Write an account as given (test control, like ``anvil_setCode``): `lamports`,
        `owner` (base58), `data` (base64), `executable`. Missing fields keep their value."""
        pubkey = Pubkey.from_string(address)
        self._keep_genesis([address])
        old = self.svm.get_account(pubkey) or Account(0, b"", SYSTEM_PROGRAM_ID)
        data = base64.b64decode(fields["data"], validate=True) if "data" in fields else old.data
        owner = Pubkey.from_string(fields["owner"]) if "owner" in fields else old.owner
        account = Account(
            int(fields.get("lamports", old.lamports)),
            bytes(data),
            owner,
            bool(fields.get("executable", old.executable)),
        )
        self.svm.set_account(pubkey, account)
        self._written([address])

    def add_program(self, program_id: str, elf: bytes) -> None:
        """Deploy `elf` at `program_id` (test control: a second program next to the HTLC)."""
        self.svm.add_program(Pubkey.from_string(program_id), elf)


def _writable_keys(tx: VersionedTransaction) -> list[str]:
    """The accounts `tx` may write, by its message header: signers first, then the
    rest, each group's read-only ones last (the message layout of the Solana docs,
    "Message Header"). Accounts loaded from lookup tables are left out: nothing here
    uses them, and a finalized read of one would show its newest state."""
    header, keys = tx.message.header, tx.message.account_keys
    signed = header.num_required_signatures
    return [
        str(key)
        for index, key in enumerate(keys)
        if index < signed - header.num_readonly_signed_accounts
        or signed <= index < len(keys) - header.num_readonly_unsigned_accounts
    ]


def _parse(raw: bytes) -> VersionedTransaction:
    try:
        return VersionedTransaction.from_bytes(raw)
    except (ValueError, TypeError) as exc:
        raise RpcFailure(-32602, f"invalid transaction: failed to deserialize: {exc}") from exc


def error_json(error: Any) -> Any:
    """A solders TransactionError in the JSON form of Solana's RPC (what clients parse)."""
    name = type(error).__name__
    if name == "TransactionErrorInstructionError":
        return {"InstructionError": [error.index, _instruction_error_json(error.err)]}
    if name in (
        "TransactionErrorInsufficientFundsForRent",
        "TransactionErrorProgramExecutionTemporarilyRestricted",
    ):
        return {name.removeprefix("TransactionError"): {"account_index": error.account_index}}
    if name == "TransactionErrorDuplicateInstruction":
        return {"DuplicateInstruction": error.index}
    return str(error).rsplit(".", 1)[-1]


def _instruction_error_json(error: Any) -> Any:
    name = type(error).__name__
    if name == "InstructionErrorCustom":
        return {"Custom": error.code}
    if name == "InstructionErrorBorshIO":
        return {"BorshIoError": str(error.value)}
    return str(error).rsplit(".", 1)[-1]


def _inner_json(inner: list[list[InnerInstruction]]) -> tuple[dict[str, Any], ...]:
    """Inner instructions as agave's RPC renders them for binary encodings: one entry per
    top-level instruction that made cross-program invocations, each inner instruction a
    compiled one (account indices, base58 data) with its stack height."""
    return tuple(
        {
            "index": index,
            "instructions": [
                {
                    "programIdIndex": compiled.program_id_index,
                    "accounts": list(compiled.accounts),
                    "data": b58encode(bytes(compiled.data)),
                    "stackHeight": item.stack_height(),
                }
                for item, compiled in ((item, item.instruction()) for item in items)
            ],
        }
        for index, items in enumerate(inner)
        if items
    )


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58, as Solana's RPC encodes instruction data."""
    number = int.from_bytes(data, "big")
    digits = ""
    while number:
        number, digit = divmod(number, 58)
        digits = _B58[digit] + digits
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + digits


def signature_of(raw: bytes) -> Signature:
    """The first signature of a serialized transaction."""
    return _parse(raw).signatures[0]
