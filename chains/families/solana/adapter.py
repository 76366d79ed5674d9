"""Solana adapter: Solana JSON-RPC (see :mod:`chains.families.solana._backends`) and solders, or
an in-process LiteSVM.

Every transaction is a v0 message with a compute-unit limit and priority fee from the
chain's config, a recent blockhash and its ``lastValidBlockHeight``. A blockhash is
reused for new transactions for `blockhash_ttl` seconds (1 s) while far from expiry,
as the EVM adapter reuses fee readings; the rent-exempt minimum is read once per data
size (a cluster constant). Signed bytes are
simulated before each send and sent with preflight off, so the same bytes can be resent
until they land or expire (see :func:`chains.journal.track`). Sends are checked against
rent exemption: a transfer that would create an account below the rent-exempt minimum,
or leave the payer below it, is refused before anything is signed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, NamedTuple

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

from chains._digest import solana_message_digest
from chains.base import (
    ChainAdapter,
    Intent,
    NativeTransfer,
    ProgramInstruction,
    Simulation,
    TokenTransfer,
    TxExpired,
    TxId,
    TxStatus,
)
from chains.families.solana._backends import AccountData, LedgerBackend, RpcBackend, SolanaBackend
from chains.families.solana._svm import SvmLedger
from chains.families.solana.config import SOLANA_GENESIS, SolanaChain
from chains.families.solana.tx import SolanaUnsignedTx
from config.errors import ChainError, InsufficientFunds, TransactionReverted, WrongChainId
from config.models import Asset

BASE_FEE_LAMPORTS = 5_000
TOKEN_ACCOUNT_SIZE = 165
MIN_BLOCKS_LEFT = 75
"""A cached blockhash is reused only while more blocks than this remain before its
`lastValidBlockHeight` at the highest height seen (half its life of 150 blocks)."""


class _RecentBlockhash(NamedTuple):
    blockhash: Hash
    last_valid: int
    taken: float  # time.monotonic() when fetched


class SolanaAdapter(ChainAdapter):
    """Adapter for one Solana cluster; create it with :meth:`connect`."""

    chain: SolanaChain

    def __init__(
        self,
        chain: SolanaChain,
        backend: SolanaBackend,
        *,
        where: str,
        blockhash_ttl: float = 1.0,
    ) -> None:
        self.chain = chain
        self._backend = backend
        backend.on_error = self.rpc_error  # its reads are this chain's reads
        self._where = where
        self._rent: dict[int, int] = {}
        self._blockhash_ttl = blockhash_ttl
        self._recent: _RecentBlockhash | None = None
        self._built: set[bytes] = set()  # digests built on the cached blockhash
        self._height_seen = 0

    @classmethod
    async def connect(
        cls,
        chain: SolanaChain,
        *,
        url: str | None = None,
        ledger: SvmLedger | None = None,
        blockhash_ttl: float = 1.0,
    ) -> SolanaAdapter:
        """Connect to `url` (or an in-process `ledger`) and check the cluster's genesis.

        `blockhash_ttl` is how long (seconds) a fetched blockhash is reused for new
        transactions; 0 fetches one for every transaction.
        """
        if ledger is not None:
            backend: SolanaBackend = LedgerBackend(ledger)
        elif url is not None:
            backend = RpcBackend(url)
        else:
            raise ChainError(f"chain {chain.name}: give an rpc url or an in-process ledger")
        where = f"{chain.name} ({url or 'in-process LiteSVM'})"
        adapter = cls(chain, backend, where=where, blockhash_ttl=blockhash_ttl)
        try:
            await adapter._check_cluster()
        except BaseException:
            await backend.close()
            raise
        return adapter

    async def _check_cluster(self) -> None:
        genesis = await self._backend.genesis_hash()
        expected = SOLANA_GENESIS.get(self.chain.cluster)
        known = {value: name for name, value in SOLANA_GENESIS.items()}
        if (expected is not None and genesis != expected) or (
            expected is None and genesis in known
        ):
            raise WrongChainId(
                f"{self._where} serves the cluster with genesis hash {genesis} "
                f"({known.get(genesis, 'a local cluster')}), but the deployment configures "
                f"cluster {self.chain.cluster}; fix cluster or the rpc URL"
            )

    async def close(self) -> None:
        """Close the RPC client."""
        await self._backend.close()

    # -- reads -------------------------------------------------------------------------

    async def balance(self, address: str, asset: Asset | str | None = None) -> int:
        """Lamports, or an SPL token balance (of the owner's associated token account)."""
        owner = _pubkey(address)
        mint = asset.spl_mint if isinstance(asset, Asset) else asset
        if mint is None:
            return await self._backend.balance(owner, self._commitment)
        mint_key = _pubkey(mint)
        program = await self._token_program(mint_key)
        account = await self._backend.account(
            get_associated_token_address(owner, mint_key, program), self._commitment
        )
        return 0 if account is None else int.from_bytes(account.data[64:72], "little")

    @property
    def _commitment(self) -> str:
        # Balances as final as the deployment wants its transactions.
        return self.chain.finality.commitment

    async def read(self, method: str, params: list[Any]) -> Any:
        """The `result` of the read-only JSON-RPC call `method`, for clients of programs on
        this cluster (the escrow): retried and its errors mapped by the backend, as every
        other read of this chain."""
        return await self._backend.read(method, params)

    async def height(self) -> int:
        """The finalized block height (what `lastValidBlockHeight` is compared with)."""
        height = await self._backend.block_height()
        self._height_seen = max(self._height_seen, height)
        return height

    async def minimum_rent(self, size: int) -> int:
        """Lamports that make an account of `size` data bytes rent-exempt (cached: rent
        parameters are fixed per cluster)."""
        if size not in self._rent:
            self._rent[size] = await self._backend.minimum_rent(size)
        return self._rent[size]

    # -- build and simulate ------------------------------------------------------------

    async def build(self, intent: Intent, sender: str) -> SolanaUnsignedTx:
        """A v0 message for `intent` with the configured compute budget and priority fee."""
        payer = _pubkey(sender)
        keys = [payer, _pubkey(intent.to)] if isinstance(intent, NativeTransfer) else [payer]
        # Independent reads, one round trip: payer (and recipient) accounts, blockhash.
        accounts, recent = await asyncio.gather(
            self._backend.accounts(keys), self._blockhash(fresh=False)
        )
        instructions = self._budget() + await self._instructions(intent, payer, accounts[1:])
        await self._check_fee_payer(payer, accounts[0], intent)
        message = MessageV0.try_compile(payer, instructions, [], recent.blockhash)
        digest = solana_message_digest(message)
        if digest in self._built:
            # The same intent again on a reused blockhash would be the same transaction
            # (it lands once): take the newest blockhash, as an uncached build would.
            recent = await self._blockhash(fresh=True)
            message = MessageV0.try_compile(payer, instructions, [], recent.blockhash)
            digest = solana_message_digest(message)
        self._built.add(digest)
        return SolanaUnsignedTx(
            chain=self.chain.name,
            sender=str(payer),
            intent=intent,
            digest=digest,
            message=message,
            last_valid_block_height=recent.last_valid,
        )

    async def _blockhash(self, *, fresh: bool) -> _RecentBlockhash:
        """A recent blockhash, reused for `blockhash_ttl` seconds while far from expiry.

        Reuse is safe: the transaction carries the blockhash's own
        `lastValidBlockHeight`, which decides expiry and re-signing exactly as for a
        fresh one, and a blockhash seen near (or past) expiry is never reused.
        """
        recent = self._recent
        if (
            fresh
            or recent is None
            or time.monotonic() - recent.taken > self._blockhash_ttl
            or recent.last_valid - self._height_seen <= MIN_BLOCKS_LEFT
        ):
            blockhash, last_valid = await self._backend.latest_blockhash(
                self.chain.finality.commitment
            )
            if recent is None or blockhash != recent.blockhash:
                self._built.clear()
            recent = self._recent = _RecentBlockhash(blockhash, last_valid, time.monotonic())
        return recent

    def _forget_blockhash(self, blockhash: Hash) -> None:
        """Never reuse `blockhash` again (the node no longer knows it)."""
        if self._recent is not None and self._recent.blockhash == blockhash:
            self._recent = None

    def _budget(self) -> list[Instruction]:
        fees = self.chain.fees
        budget = [set_compute_unit_limit(fees.compute_unit_limit)]
        if fees.priority_fee_microlamports:
            budget.append(set_compute_unit_price(fees.priority_fee_microlamports))
        return budget

    def fee(self, signatures: int = 1) -> int:
        """Lamports the payer is charged: base fee per signature plus the priority fee."""
        fees = self.chain.fees
        priority = -(-fees.compute_unit_limit * fees.priority_fee_microlamports // 10**6)
        return BASE_FEE_LAMPORTS * signatures + priority

    async def _instructions(
        self, intent: Intent, payer: Pubkey, recipient: list[AccountData | None]
    ) -> list[Instruction]:
        if isinstance(intent, NativeTransfer):
            await self._check_new_account_rent(_pubkey(intent.to), recipient[0], intent.amount)
            return [
                transfer(
                    TransferParams(
                        from_pubkey=payer, to_pubkey=_pubkey(intent.to), lamports=intent.amount
                    )
                )
            ]
        if isinstance(intent, TokenTransfer):
            return await self._token_transfer(intent, payer)
        if isinstance(intent, ProgramInstruction):
            accounts = [
                AccountMeta(_pubkey(a.pubkey), a.is_signer, a.is_writable) for a in intent.accounts
            ]
            return [Instruction(_pubkey(intent.program_id), intent.data, accounts)]
        raise ChainError(f"a Solana chain cannot run a {intent.kind!r} intent; use an EVM chain")

    async def _check_new_account_rent(
        self, to: Pubkey, account: AccountData | None, amount: int
    ) -> None:
        if account is not None:
            return
        minimum = await self.minimum_rent(0)
        if amount < minimum:
            raise InsufficientFunds(
                f"{self._where}: sending {amount} lamports would create {to} below the "
                f"rent-exempt minimum of {minimum} lamports; send at least {minimum}"
            )

    async def _check_fee_payer(
        self, payer: Pubkey, account: AccountData | None, intent: Intent
    ) -> None:
        spend = intent.amount if isinstance(intent, NativeTransfer) else 0
        if isinstance(intent, TokenTransfer):
            spend = await self.minimum_rent(TOKEN_ACCOUNT_SIZE)  # may create an ATA
        balance = 0 if account is None else account.lamports
        needed = spend + self.fee()
        remaining = balance - needed
        minimum = await self.minimum_rent(0)
        if remaining < 0 or 0 < remaining < minimum:
            raise InsufficientFunds(
                f"{self._where}: {payer} holds {balance} lamports and needs {needed} plus "
                f"either 0 or at least {minimum} (rent-exempt minimum) left; fund it or "
                "lower the amount"
            )

    async def _token_program(self, mint: Pubkey) -> Pubkey:
        return Pubkey.from_string((await self._mint(mint)).owner)

    async def _mint(self, mint: Pubkey) -> AccountData:
        # Confirmed: a mint only describes its token (program, decimals).
        account = await self._backend.account(mint, "confirmed")
        if account is None:
            raise ChainError(f"{self._where}: SPL mint {mint} does not exist; check the asset")
        return account

    async def _token_transfer(self, intent: TokenTransfer, payer: Pubkey) -> list[Instruction]:
        mint, owner = _pubkey(intent.token), _pubkey(intent.to)
        mint_account = await self._mint(mint)
        program, decimals = Pubkey.from_string(mint_account.owner), mint_account.data[44]
        source = get_associated_token_address(payer, mint, program)
        dest = get_associated_token_address(owner, mint, program)
        instructions = []
        # Confirmed, as the checks before signing: an associated account created moments
        # ago is not created again (creating it again is harmless, idempotent).
        if await self._backend.account(dest, "confirmed") is None:
            instructions.append(
                create_idempotent_associated_token_account(payer, owner, mint, program)
            )
        instructions.append(
            transfer_checked(
                TransferCheckedParams(
                    program_id=program,
                    source=source,
                    mint=mint,
                    dest=dest,
                    owner=payer,
                    amount=intent.amount,
                    decimals=decimals,
                )
            )
        )
        return instructions

    async def simulate(self, tx: SolanaUnsignedTx | bytes) -> Simulation:  # type: ignore[override]
        """simulateTransaction: signatures checked for signed bytes, not for a message."""
        if isinstance(tx, bytes):
            return await self._simulate(_parse(tx), verify=True)
        signers = tx.message.header.num_required_signatures
        versioned = VersionedTransaction.populate(tx.message, [Signature.default()] * signers)
        return await self._simulate(versioned, verify=False)

    async def _simulate(self, versioned: VersionedTransaction, *, verify: bool) -> Simulation:
        result = await self._backend.simulate(versioned, sig_verify=verify)
        if result.err is None:
            return Simulation(ok=True, gas_used=result.units, logs=tuple(result.logs))
        reason = _reason(result.err, result.logs)
        if "BlockhashNotFound" in reason:
            self._forget_blockhash(versioned.message.recent_blockhash)
        return Simulation(ok=False, reason=reason, gas_used=result.units, logs=tuple(result.logs))

    # -- send and track ----------------------------------------------------------------

    def tx_id(self, signed: bytes) -> TxId:
        """The transaction's first signature, base58."""
        return TxId(str(_parse(signed).signatures[0]))

    async def broadcast(self, signed: bytes) -> TxId:
        """Simulate `signed`, then send it once with preflight off: the simulation of
        these exact bytes, signatures verified, is the preflight."""
        versioned = _parse(signed)
        tx_id = TxId(str(versioned.signatures[0]))
        simulation = await self._simulate(versioned, verify=True)
        reason = simulation.reason or ""
        if not simulation.ok and "AlreadyProcessed" in reason:
            return tx_id  # these exact bytes already landed
        if not simulation.ok and "BlockhashNotFound" in reason:
            raise TxExpired(
                f"{self._where}: blockhash of {tx_id} is no longer valid; not sent",
                signature=tx_id,
                signature_absent=False,
            )
        if not simulation.ok:
            raise TransactionReverted(
                f"{self._where}: simulation failed, not sent: {reason}", reason=reason
            )
        sent = await self._backend.send(signed)
        if sent != tx_id:
            raise ChainError(f"{self._where}: node answered signature {sent} for {tx_id}")
        return tx_id

    async def status(self, tx_id: TxId) -> TxStatus:
        """pending (not seen yet), included (confirmed, when finality is finalized),
        final, or failed. Expiry is decided against `lastValidBlockHeight` by the caller."""
        found = await self._backend.status(tx_id)
        if found is None:
            return TxStatus(tx_id=tx_id, state="pending")
        if found.err is not None:
            return TxStatus(
                tx_id=tx_id,
                state="failed",
                block=found.slot,
                reason=_reason(found.err, []),
                finality=found.confirmation,
            )
        wanted = self.chain.finality.commitment
        final = found.confirmation == "finalized" or (
            wanted == "confirmed" and found.confirmation == "confirmed"
        )
        return TxStatus(
            tx_id=tx_id,
            state="final" if final else "included",
            block=found.slot,
            finality=found.confirmation,
        )


def _pubkey(address: str) -> Pubkey:
    try:
        return Pubkey.from_string(address)
    except ValueError as exc:
        raise ChainError(f"{address!r} is not a Solana address (base58 public key)") from exc


def _parse(signed: bytes) -> VersionedTransaction:
    try:
        return VersionedTransaction.from_bytes(signed)
    except (ValueError, TypeError) as exc:
        raise ChainError(
            f"not a signed Solana transaction ({len(signed)} bytes): {exc}; pass the signer's "
            "serialized VersionedTransaction unchanged"
        ) from exc


def _reason(err: Any, logs: list[str]) -> str:
    detail = next((line for line in reversed(logs) if "failed" in line or "Error" in line), "")
    text = str(err)
    return f"{text}: {detail}" if detail else text
