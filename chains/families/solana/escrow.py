"""HTLC legs on Solana: the Covenant HTLC program through the Solana adapter.

The escrow of a leg is an account whose keypair is derived from the agent's secret and
the plan id (so a restart finds the same escrow, and nobody else can initialise it: the
lock needs the escrow's signature). A lock creates and initialises it in one transaction
(or, if lamports were sent to the address first, tops it up, allocates and assigns it);
a claim or refund moves all its lamports (the amount and the rent deposit) out, which
closes it. A closed escrow reads as empty, so :meth:`read` is completed by the
coordinator's journal (see ``closes_on_settle``). A counterparty's escrow counts only if
the HTLC program owns it and it covers its amount (docs/solana-escrow.md).

A leg whose `asset` is an SPL mint (base58) goes through the program's token
instructions (:mod:`chains.families.solana.htlc_token`): the tokens wait in a vault owned
by the escrow's program-derived address, and a token escrow counts only if that vault
is what the program made it (its mint, its owner, at least the amount).

Reads the adapter does not offer (account data, the Clock sysvar, the escrow's
transaction history) go through a read-only solana-py client to the same RPC endpoint.
"""

from __future__ import annotations

import json
import logging
import struct
from typing import Any

from solders.compute_budget import set_compute_unit_limit
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.responses import GetTransactionResp
from solders.signature import Signature
from solders.sysvar import CLOCK
from solders.transaction_status import EncodedTransactionWithStatusMeta
from spl.token.constants import MINT_LEN, TOKEN_PROGRAM_ID

from chains.atomic.base import HtlcChain, Leg, LockState, OnChainLock, Party, Purpose
from chains.base import AccountRef, ProgramInstruction, UnsignedTx
from chains.families.solana import htlc_client as program
from chains.families.solana import htlc_token as tokens
from chains.families.solana._backends import AccountData, account_data
from chains.families.solana.adapter import SolanaAdapter
from chains.families.solana.tx import SolanaUnsignedTx
from config.errors import ChainError, TransactionReverted
from config.margins import ChainMargin
from wallets.authorization import solana_message_digest

log = logging.getLogger(__name__)
# getSignaturesForAddress returns at most 1000 signatures a call (agave's
# MAX_GET_CONFIRMED_SIGNATURES_FOR_ADDRESS2_LIMIT); larger limits are refused.
SIGNATURES_PAGE = 1000


class SolanaHtlc(HtlcChain):
    """The HTLC program `program_id` on the adapter's cluster."""

    family = "solana"
    closes_on_settle = True
    adapter: SolanaAdapter

    def __init__(self, adapter: SolanaAdapter, program_id: str, *, margin: ChainMargin) -> None:
        self.adapter = adapter
        self.margin = margin
        self.program_id = Pubkey.from_string(program_id)
        # Per escrow: why its account is not a valid lock (read), and the signatures
        # already searched for a claim that revealed nothing (revealed_preimage).
        self._invalid: dict[str, str] = {}
        self._searched: dict[str, set[Signature]] = {}

    def _escrow_seed(self, party: Party, plan_id: str, index: int) -> bytes:
        # Plan ids never contain '.', so this label cannot equal another plan's id.
        return party.derive_secret(f"{plan_id}.escrow.{index}")

    def locator(self, plan_id: str, index: int, party: Party) -> str:
        """The escrow account's address (base58)."""
        return str(Keypair.from_seed(self._escrow_seed(party, plan_id, index)).pubkey())

    def co_signers(self, purpose: Purpose, leg: Leg, party: Party, plan_id: str) -> list[bytes]:
        """The escrow keypair signs the lock that creates it."""
        return [self._escrow_seed(party, plan_id, leg.index)] if purpose == "lock" else []

    async def now(self) -> int:
        """The Clock sysvar's unix_timestamp, which the program compares deadlines with."""
        # getSlot first: a cheap call on a real cluster, and on the LiteSVM devnet server
        # the call that produces the blocks wall time says are due (it only moves its
        # clock when asked for slots, heights, blockhashes or statuses).
        await self.adapter.read("getSlot", [_CONFIRMED])
        clock = await self._account(CLOCK, final=False)
        if clock is None:
            raise ChainError(f"{self.name}: the Clock sysvar is not readable")
        return int(struct.unpack_from("<q", bytes(clock.data), 32)[0])

    async def read(self, leg: Leg, *, final: bool = False) -> OnChainLock:
        """The escrow as the HTLC program vouches for it (see
        :func:`~chains.families.solana.htlc_client.check_escrow_account`).

        EMPTY if the account never existed, was closed by a settle, or is not a valid
        lock of the configured program: bytes that merely decode as an escrow, in an
        account another program owns or that holds less than it records, lock nothing.
        The reason is logged (once per reason) and given by :meth:`why_not_locked`.
        """
        account = await self._account(Pubkey.from_string(leg.locator), final=final)
        if account is None:
            return OnChainLock(state=LockState.EMPTY)
        if program.is_squatted(Pubkey.from_string(account.owner), account.lamports, account.data):
            # Lamports sent to the published address: no lock yet, but one can still be
            # made there (`lock_instructions` tops it up), so nothing is wrong with it.
            return OnChainLock(state=LockState.EMPTY)
        try:
            lock = await self._vouched(leg.locator, account, final=final)
        except program.InvalidEscrow as exc:
            if self._invalid.get(leg.locator) != exc.reason:
                log.warning("%s: %s", self.name, exc)
            self._invalid[leg.locator] = exc.reason
            return OnChainLock(state=LockState.EMPTY)
        self._invalid.pop(leg.locator, None)
        return lock

    async def _vouched(self, address: str, account: AccountData, *, final: bool) -> OnChainLock:
        # The account's size says which kind of escrow it claims to be; the leg's asset
        # is compared with what it records by the coordinator (OnChainLock.mismatch).
        owner = Pubkey.from_string(account.owner)
        data = bytes(account.data)
        if owner == self.program_id and len(data) == program.TOKEN_ESCROW_LEN:
            token = tokens.check_token_escrow(
                address, owner=owner, data=data, program_id=self.program_id
            )
            if token.state == program.EscrowState.LOCKED:
                vault = await self._account(token.vault, final=final)
                tokens.check_vault(
                    address,
                    token,
                    program_id=self.program_id,
                    vault_owner=None if vault is None else Pubkey.from_string(vault.owner),
                    vault_data=b"" if vault is None else bytes(vault.data),
                )
            escrow: program.Escrow | tokens.TokenEscrow = token
            asset: str | None = str(token.mint)
        else:
            escrow = program.check_escrow_account(
                address,
                owner=owner,
                lamports=account.lamports,
                data=data,
                program_id=self.program_id,
            )
            asset = None
        if escrow.state == program.EscrowState.EMPTY:
            return OnChainLock(state=LockState.EMPTY)
        return OnChainLock(
            state=LockState(int(escrow.state)),
            sender=str(escrow.sender),
            recipient=str(escrow.recipient),
            amount=escrow.amount,
            asset=asset,
            hashlock=escrow.hashlock,
            deadline=escrow.deadline,
        )

    async def why_not_asset(self, asset: str | None) -> str | None:
        """A token leg needs a mint of the SPL Token program at `asset` (the program
        refuses Token-2022, ``WrongTokenProgram``)."""
        if asset is None:
            return None
        try:
            mint = Pubkey.from_string(asset)
        except ValueError:
            return f"{asset!r} is not a base58 account address"
        account = await self._account(mint, final=False)
        if account is None:
            return f"there is no account at {asset} on {self.name}; check the asset's spl_mint"
        if account.owner != str(TOKEN_PROGRAM_ID) or len(account.data) != MINT_LEN:
            return f"{asset} is not a mint of the SPL Token program (owner {account.owner})"
        return None

    def why_not_locked(self, leg: Leg) -> str | None:
        """Why the last :meth:`read` of `leg` found an account there but no valid lock
        (None if it found a valid escrow, or nothing)."""
        return self._invalid.get(leg.locator)

    async def build(
        self,
        purpose: Purpose,
        leg: Leg,
        *,
        hashlock: bytes = b"",
        preimage: bytes = b"",
        payer: str,
    ) -> UnsignedTx:
        """A lock (create + lock, one transaction), claim or refund of `leg`; of SOL, or
        of the SPL mint `leg.asset` names (see :mod:`htlc_token`)."""
        escrow = Pubkey.from_string(leg.locator)
        if leg.asset is not None:
            return await self._build_token(
                purpose, leg, escrow, hashlock=hashlock, preimage=preimage, payer=payer
            )
        if purpose == "lock":
            return await self._lock(leg, escrow, hashlock, Pubkey.from_string(payer))
        if purpose == "claim":
            instruction = program.claim_instruction(
                self.program_id,
                escrow=escrow,
                recipient=Pubkey.from_string(leg.recipient),
                preimage=preimage,
            )
        else:
            instruction = program.refund_instruction(
                self.program_id, escrow=escrow, sender=Pubkey.from_string(leg.sender)
            )
        return await self.adapter.build(_intent(instruction), payer)

    async def _lock(
        self, leg: Leg, escrow: Pubkey, hashlock: bytes, payer: Pubkey
    ) -> SolanaUnsignedTx:
        # The adapter builds one instruction per intent; a lock needs create_account and
        # lock in the same transaction, so the message is compiled here.
        prefunded = await self._prefunded(escrow)
        instructions = program.lock_instructions(
            self.program_id,
            sender=payer,
            escrow=escrow,
            recipient=Pubkey.from_string(leg.recipient),
            hashlock=hashlock,
            deadline=leg.deadline,
            amount=leg.amount,
            rent_exempt_lamports=await self.adapter.minimum_rent(program.ESCROW_LEN),
            prefunded=prefunded,
        )
        return await self._compiled(instructions, payer, simulate=f"lock of {leg.locator}")

    async def _prefunded(self, escrow: Pubkey) -> int | None:
        """The lamports of an escrow address someone sent lamports to before the lock
        (see :func:`htlc_client.lock_instructions`), or None if it does not exist."""
        existing = await self._account(escrow, final=False)
        squatted = existing is not None and program.is_squatted(
            Pubkey.from_string(existing.owner), existing.lamports, bytes(existing.data)
        )
        return existing.lamports if existing is not None and squatted else None

    async def _build_token(
        self,
        purpose: Purpose,
        leg: Leg,
        escrow: Pubkey,
        *,
        hashlock: bytes,
        preimage: bytes,
        payer: str,
    ) -> UnsignedTx:
        mint, fee_payer = tokens.parse_mint(leg.asset or ""), Pubkey.from_string(payer)
        sender = Pubkey.from_string(leg.sender)
        if purpose == "lock":
            instructions = tokens.lock_token_instructions(
                self.program_id,
                sender=fee_payer,
                escrow=escrow,
                recipient=Pubkey.from_string(leg.recipient),
                mint=mint,
                hashlock=hashlock,
                deadline=leg.deadline,
                amount=leg.amount,
                rent_exempt_lamports=await self.adapter.minimum_rent(tokens.TOKEN_ESCROW_LEN),
                prefunded=await self._prefunded(escrow),
            )
            return await self._compiled(instructions, fee_payer, simulate=f"lock of {escrow}")
        if purpose == "claim":
            owner = Pubkey.from_string(leg.recipient)
            settle = tokens.claim_token_instruction(
                self.program_id,
                escrow=escrow,
                mint=mint,
                recipient=owner,
                sender=sender,
                preimage=preimage,
            )
        else:
            owner = sender
            settle = tokens.refund_token_instruction(
                self.program_id, escrow=escrow, mint=mint, sender=sender
            )
        if await self._account(tokens.token_account(owner, mint), final=False) is not None:
            return await self.adapter.build(_intent(settle), payer)
        # The paid party has no token account for the mint (yet, or any more): create it
        # in the same transaction. Never simulated: a claim's data is the preimage, which
        # must reach no RPC before the engine authorized it and the signer signed it.
        create = tokens.create_token_account(fee_payer, owner, mint)
        return await self._compiled([create, settle], fee_payer, simulate=None)

    async def _compiled(
        self, instructions: list[Instruction], payer: Pubkey, *, simulate: str | None
    ) -> SolanaUnsignedTx:
        """One v0 message of `instructions` after the compute budget; its intent is the
        last (the HTLC program's). `simulate` names what a failed simulation refuses;
        None: not simulated."""
        budget = set_compute_unit_limit(self.adapter.chain.fees.compute_unit_limit)
        blockhash, last_valid = await self.recent_blockhash()
        message = MessageV0.try_compile(payer, [budget, *instructions], [], blockhash)
        unsigned = SolanaUnsignedTx(
            chain=self.name,
            sender=str(payer),
            intent=_intent(instructions[-1]),
            digest=solana_message_digest(message),
            message=message,
            last_valid_block_height=last_valid,
        )
        if simulate is None:
            return unsigned
        simulation = await self.adapter.simulate(unsigned)
        if not simulation.ok:
            raise TransactionReverted(
                f"{self.name}: {simulate} would fail: {simulation.reason}",
                reason=simulation.reason,
            )
        return unsigned

    async def recent_blockhash(self) -> tuple[Hash, int]:
        """A confirmed blockhash and the last block height a transaction using it lands by."""
        latest = (await self.adapter.read("getLatestBlockhash", [_CONFIRMED]))["value"]
        return Hash.from_string(latest["blockhash"]), int(latest["lastValidBlockHeight"])

    async def revealed_preimage(
        self, leg: Leg, hashlock: bytes, *, lock_tx: str | None = None
    ) -> bytes | None:
        """The preimage a claim of `leg`'s escrow revealed, or None if none is visible.

        Every transaction naming the escrow after `lock_tx` (our lock's signature) is
        listed, page after page, so any number sent after the claim cannot hide it; they
        are read oldest first, and each only once. In each, the HTLC program's ``claim``
        instructions on this escrow, top level or inner (a claim made through another
        program), give the preimage from their data, which no log truncation can drop;
        the ``Claimed`` event in the logs is the fallback. A candidate counts only if its
        SHA-256 is `hashlock`. Needs ``getSignaturesForAddress`` and ``getTransaction``;
        a failed read raises :class:`ChainError` (None always means "no claim seen", which
        callers may take as "not claimed").
        """
        escrow = Pubkey.from_string(leg.locator)
        until = Signature.from_string(lock_tx) if lock_tx else None
        searched = self._searched.setdefault(leg.locator, set())
        for signature in reversed(await self._history(escrow, until)):
            if signature in searched:
                continue
            found = await self._preimage_in(signature, escrow, hashlock)
            if found is not None:
                return found
        return None

    async def _history(self, address: Pubkey, until: Signature | None) -> list[Signature]:
        """Signatures of the transactions naming `address` newer than `until`, newest
        first: ``getSignaturesForAddress`` pages of the RPC's maximum, each ``before``
        the oldest of the last, until a page comes back empty."""
        signatures: list[Signature] = []
        seen: set[Signature] = set()
        before: Signature | None = None
        while True:
            options: dict[str, Any] = {**_CONFIRMED, "limit": SIGNATURES_PAGE}
            options |= {"before": str(before)} if before is not None else {}
            options |= {"until": str(until)} if until is not None else {}
            page = await self.adapter.read("getSignaturesForAddress", [str(address), options])
            listed = [Signature.from_string(item["signature"]) for item in page]
            fresh = [signature for signature in listed if signature not in seen]
            if not fresh:  # the end (or an endpoint that ignores `before`: stop anyway)
                return signatures
            signatures.extend(fresh)
            seen.update(fresh)
            before = fresh[-1]

    async def _preimage_in(
        self, signature: Signature, escrow: Pubkey, hashlock: bytes
    ) -> bytes | None:
        options = {**_CONFIRMED, "encoding": "base64", "maxSupportedTransactionVersion": 0}
        result = await self.adapter.read("getTransaction", [str(signature), options])
        if result is None:
            return None  # not served yet: read it again next time
        fetched = _transaction(result)
        found = program.claimed_preimages(fetched, program_id=self.program_id, escrow=escrow)
        preimage = next((p for p in found if program.hashlock_of(p) == hashlock), None)
        if preimage is None:  # never fetch it again; a reveal is returned every time
            self._searched[str(escrow)].add(signature)
        return preimage

    async def can_read_reveals(self) -> bool:
        """True if the endpoint serves ``getSignaturesForAddress`` (the transaction
        history a claim's preimage is read from)."""
        try:
            await self.adapter.read("getSignaturesForAddress", [str(self.program_id), {"limit": 1}])
        except ChainError:
            return False
        return True

    async def close(self) -> None:
        """Nothing to close: the adapter owns the connection."""

    async def _account(self, address: Pubkey, *, final: bool) -> AccountData | None:
        wanted = self.adapter.chain.finality.commitment
        commitment = "finalized" if final and wanted == "finalized" else "confirmed"
        options = {"commitment": commitment, "encoding": "base64"}
        result = await self.adapter.read("getAccountInfo", [str(address), options])
        return account_data(result["value"])


_CONFIRMED = {"commitment": "confirmed"}


def _transaction(result: Any) -> EncodedTransactionWithStatusMeta:
    """The transaction and its meta from a ``getTransaction`` result (base64)."""
    answer = json.dumps({"jsonrpc": "2.0", "id": 0, "result": result})
    response = GetTransactionResp.from_json(answer)
    confirmed = response.value if isinstance(response, GetTransactionResp) else None
    if confirmed is None:
        raise ChainError("getTransaction answered a transaction it then did not give")
    return confirmed.transaction


def _intent(instruction: Any) -> ProgramInstruction:
    accounts = tuple(
        AccountRef(pubkey=str(meta.pubkey), is_signer=meta.is_signer, is_writable=meta.is_writable)
        for meta in instruction.accounts
    )
    return ProgramInstruction(
        program_id=str(instruction.program_id), accounts=accounts, data=bytes(instruction.data)
    )
