"""Solana adapter on the LiteSVM JSON-RPC server: cluster check, compute budget, rent,
SPL tokens with associated accounts, commitment levels, and blockhash expiry."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from aiohttp import web
from solders.compute_budget import ID as COMPUTE_BUDGET_ID
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import (
    CreateAccountParams,
    TransferParams,
    create_account,
    transfer,
)
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_mint2,
    mint_to,
)
from spl.token.models import InitializeMint2Params, MintToParams

from chains.base import (
    AccountRef,
    NativeTransfer,
    ProgramInstruction,
    TokenTransfer,
    TxExpired,
    UnsignedTx,
)
from chains.families.solana.adapter import MIN_BLOCKS_LEFT, SolanaAdapter
from chains.families.solana.tx import SolanaUnsignedTx
from chains.journal import TxJournal
from chains.sender import send_intent
from config.errors import InsufficientFunds, RpcUnreachable, WrongChainId
from tests.chains.conftest import SolanaRpcServer, solana_chain, solana_signer

SOL = 10**9


async def _rpc(url: str, method: str, *params: object) -> object:
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        )
    body = reply.json()
    assert "error" not in body, body
    return body["result"]


async def _funded(adapter: SolanaAdapter, url: str, lamports: int = 10 * SOL) -> Keypair:
    payer = Keypair()
    await _rpc(url, "requestAirdrop", str(payer.pubkey()), lamports)
    return payer


@pytest.fixture
def server(tmp_path):
    made = SolanaRpcServer(tmp_path)
    yield made
    made.kill()


async def test_a_different_cluster_is_refused_at_connect(solana_server):
    with pytest.raises(WrongChainId, match=r"cluster devnet"):
        await SolanaAdapter.connect(solana_chain(cluster="devnet"), url=solana_server.url)


async def test_compute_budget_and_priority_fee_come_from_config(solana_server):
    chain = solana_chain(fees={"compute_unit_limit": 50_000, "priority_fee_microlamports": 20})
    async with await SolanaAdapter.connect(chain, url=solana_server.url) as adapter:
        payer = await _funded(adapter, solana_server.url)
        tx = await adapter.build(
            NativeTransfer(to=str(Keypair().pubkey()), amount=SOL), str(payer.pubkey())
        )
    keys = tx.message.account_keys
    budget = [
        ix for ix in tx.message.instructions if keys[ix.program_id_index] == COMPUTE_BUDGET_ID
    ]
    assert [bytes(ix.data) for ix in budget] == [
        bytes([2]) + (50_000).to_bytes(4, "little"),
        bytes([3]) + (20).to_bytes(8, "little"),
    ]
    assert adapter.fee() == 5_000 + 1  # 50_000 CU * 20 µlamports = 1 lamport
    assert tx.last_valid_block_height > 0


async def test_rent_exemption_is_checked_before_signing(solana_server):
    async with await SolanaAdapter.connect(solana_chain(), url=solana_server.url) as adapter:
        payer = await _funded(adapter, solana_server.url)
        minimum = await adapter.minimum_rent(0)
        with pytest.raises(InsufficientFunds, match=r"rent-exempt minimum"):
            await adapter.build(
                NativeTransfer(to=str(Keypair().pubkey()), amount=minimum - 1), str(payer.pubkey())
            )
        poor = await _funded(adapter, solana_server.url, minimum + 10_000)
        with pytest.raises(InsufficientFunds, match=r"holds"):  # would strand dust below rent
            await adapter.build(
                NativeTransfer(to=str(payer.pubkey()), amount=minimum), str(poor.pubkey())
            )


async def test_spl_transfer_creates_the_associated_account_once(solana_server, engine):
    async with await SolanaAdapter.connect(solana_chain(), url=solana_server.url) as adapter:
        payer = await _funded(adapter, solana_server.url)
        journal, owner = TxJournal(engine), str(payer.pubkey())
        mint = await _create_mint(adapter, journal, payer, supply=1_000)
        recipient = str(Keypair().pubkey())
        first = await adapter.build(TokenTransfer(token=mint, to=recipient, amount=300), owner)
        assert _creates_ata(first)
        status = await send_intent(
            adapter,
            journal,
            TokenTransfer(token=mint, to=recipient, amount=300),
            owner,
            solana_signer(payer),
        )
        assert status.state == "final"
        second = await adapter.build(TokenTransfer(token=mint, to=recipient, amount=1), owner)
        assert not _creates_ata(second)
        assert await adapter.balance(recipient, mint) == 300
        assert await adapter.balance(owner, mint) == 700


def _creates_ata(tx: SolanaUnsignedTx) -> bool:
    keys = tx.message.account_keys
    ata_program = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
    return any(keys[ix.program_id_index] == ata_program for ix in tx.message.instructions)


async def _create_mint(
    adapter: SolanaAdapter, journal: TxJournal, payer: Keypair, supply: int
) -> str:
    mint, me = Keypair(), payer.pubkey()
    rent = await adapter.minimum_rent(82)
    steps = [
        (
            create_account(
                CreateAccountParams(
                    from_pubkey=me,
                    to_pubkey=mint.pubkey(),
                    lamports=rent,
                    space=82,
                    owner=TOKEN_PROGRAM_ID,
                )
            ),
            (payer, mint),
        ),
        (
            initialize_mint2(
                InitializeMint2Params(
                    decimals=6, program_id=TOKEN_PROGRAM_ID, mint=mint.pubkey(), mint_authority=me
                )
            ),
            (payer,),
        ),
        (create_idempotent_associated_token_account(me, me, mint.pubkey()), (payer,)),
        (
            mint_to(
                MintToParams(
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint.pubkey(),
                    dest=get_associated_token_address(me, mint.pubkey()),
                    mint_authority=me,
                    amount=supply,
                )
            ),
            (payer,),
        ),
    ]
    for instruction, signers in steps:
        intent = ProgramInstruction(
            program_id=str(instruction.program_id),
            data=bytes(instruction.data),
            accounts=tuple(
                AccountRef(pubkey=str(a.pubkey), is_signer=a.is_signer, is_writable=a.is_writable)
                for a in instruction.accounts
            ),
        )
        status = await send_intent(adapter, journal, intent, str(me), solana_signer(*signers))
        assert status.state == "final"
    return str(mint.pubkey())


async def test_finalized_commitment_waits_for_finalization(solana_server, engine):
    chain = solana_chain(finality={"commitment": "finalized"})
    async with await SolanaAdapter.connect(chain, url=solana_server.url) as adapter:
        payer = await _funded(adapter, solana_server.url)
        tx = await adapter.build(
            NativeTransfer(to=str(Keypair().pubkey()), amount=SOL), str(payer.pubkey())
        )
        tx_id = await adapter.broadcast(await solana_signer(payer)(tx))
        status = await adapter.status(tx_id)
        assert (status.state, status.finality) == ("included", "confirmed")
        await _rpc(solana_server.url, "covenant_advanceBlocks", 32)
        status = await adapter.status(tx_id)
    assert (status.state, status.finality) == ("final", "finalized")


async def test_a_finalized_read_shows_accounts_as_they_were_finality_depth_blocks_ago(
    solana_server, engine
):
    """agave answers a `finalized` read from its highest rooted bank (rpc.rs,
    ``JsonRpcRequestProcessor::bank``), and so must the server: a transfer's recipient is
    empty at finalized until its slot is rooted, while confirmed sees it at once (the
    negative control: the same read at confirmed). A maker waiting for the taker's lock to
    be final reads it this way."""
    chain = solana_chain(finality={"commitment": "finalized"})
    to = str(Keypair().pubkey())
    async with await SolanaAdapter.connect(chain, url=solana_server.url) as adapter:
        payer = await _funded(adapter, solana_server.url)
        tx = await adapter.build(NativeTransfer(to=to, amount=SOL), str(payer.pubkey()))
        await adapter.broadcast(await solana_signer(payer)(tx))

        async def reads() -> dict[str, object]:
            found: dict[str, object] = {}
            for commitment in ("confirmed", "finalized"):
                info = await _rpc(
                    solana_server.url, "getAccountInfo", to, {"commitment": commitment}
                )
                balance = await _rpc(
                    solana_server.url, "getBalance", to, {"commitment": commitment}
                )
                assert isinstance(info, dict)
                assert isinstance(balance, dict)
                value = info["value"]
                found[commitment] = (value and value["lamports"], balance["value"])
            return found

        assert await reads() == {"confirmed": (SOL, SOL), "finalized": (None, 0)}
        assert await adapter.balance(to) == 0  # the deployment asked for finalized
        unnamed = await _rpc(solana_server.url, "getBalance", to)
        assert isinstance(unnamed, dict)
        assert unnamed["value"] == 0  # agave's default commitment is finalized
        await _rpc(solana_server.url, "covenant_advanceBlocks", 32)
        assert await reads() == {"confirmed": (SOL, SOL), "finalized": (SOL, SOL)}
        assert await adapter.balance(to) == SOL


class _CountingSigner:
    """Signs with `payer` and records the chain height at each signature."""

    def __init__(self, adapter: SolanaAdapter, payer: Keypair) -> None:
        self.adapter, self.sign_with = adapter, solana_signer(payer)
        self.calls: list[tuple[int, int]] = []  # (height when signing, last valid height)

    async def __call__(self, tx: UnsignedTx) -> bytes:
        assert isinstance(tx, SolanaUnsignedTx)
        self.calls.append((await self.adapter.height(), tx.last_valid_block_height))
        return await self.sign_with(tx)


async def test_blockhash_expiry_re_signs_only_after_expiry_and_one_transfer_lands(server, engine):
    journal, to = TxJournal(engine), str(Keypair().pubkey())
    async with await SolanaAdapter.connect(solana_chain(), url=server.url) as adapter:
        payer = await _funded(adapter, server.url)
        signer = _CountingSigner(adapter, payer)
        await _rpc(server.url, "covenant_setHold", True)  # the leader never processes it
        sending = asyncio.create_task(
            send_intent(
                adapter,
                journal,
                NativeTransfer(to=to, amount=SOL),
                str(payer.pubkey()),
                signer,
                timeout=30,
                poll=0.05,
            )
        )
        await _until(lambda: len(journal.entries("solana-test")) == 1)
        await asyncio.sleep(0.3)
        assert len(signer.calls) == 1  # not expired yet: no second signature
        await _rpc(server.url, "covenant_advanceBlocks", 151)
        released = await _rpc(server.url, "covenant_releaseHeld")  # too late: never lands
        assert isinstance(released, int)
        assert released >= 1
        await _rpc(server.url, "covenant_setHold", False)
        status = await asyncio.wait_for(sending, 30)
    assert status.state == "final"
    [(_, first_valid), (second_height, _)] = signer.calls
    assert second_height > first_valid
    assert [e.status for e in journal.entries("solana-test")] == ["expired", "final"]
    async with await SolanaAdapter.connect(solana_chain(), url=server.url) as adapter:
        assert await adapter.balance(to) == SOL


async def test_transaction_landing_before_expiry_is_never_re_signed(server, engine):
    journal, to = TxJournal(engine), str(Keypair().pubkey())
    async with await SolanaAdapter.connect(solana_chain(), url=server.url) as adapter:
        payer = await _funded(adapter, server.url)
        signer = _CountingSigner(adapter, payer)
        await _rpc(server.url, "covenant_setHold", True)
        sending = asyncio.create_task(
            send_intent(
                adapter,
                journal,
                NativeTransfer(to=to, amount=SOL),
                str(payer.pubkey()),
                signer,
                timeout=30,
                poll=0.05,
            )
        )
        await _until(lambda: len(journal.entries("solana-test")) == 1)
        await _rpc(server.url, "covenant_releaseHeld")  # lands just before ...
        await _rpc(server.url, "covenant_advanceBlocks", 151)  # ... the blockhash expires
        status = await asyncio.wait_for(sending, 30)
        assert status.state == "final"
        assert len(signer.calls) == 1
        assert await adapter.balance(to) == SOL


async def test_server_speaks_json_rpc_errors(solana_server):
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            solana_server.url,
            json=[
                {"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
                {"jsonrpc": "2.0", "id": 2, "method": "noSuchMethod"},
                {"jsonrpc": "2.0", "id": 3, "method": "sendTransaction", "params": ["@@"]},
            ],
        )
    ok, missing, bad = reply.json()
    assert ok["result"] == "ok"
    assert missing["error"]["code"] == -32601
    assert bad["error"]["code"] == -32602


# -- caches: blockhash reuse, rent minimum ---------------------------------------------


def _blockhash(tx: SolanaUnsignedTx) -> str:
    return str(tx.message.recent_blockhash)


async def _transfer(adapter: SolanaAdapter, payer: Keypair, amount: int = SOL) -> SolanaUnsignedTx:
    intent = NativeTransfer(to=str(Keypair().pubkey()), amount=amount)
    return await adapter.build(intent, str(payer.pubkey()))


async def test_a_blockhash_is_reused_within_its_ttl_and_fetched_after(solana_server):
    url = solana_server.url
    async with await SolanaAdapter.connect(solana_chain(), url=url, blockhash_ttl=60) as cached:
        payer = await _funded(cached, url)
        first = await _transfer(cached, payer)
        await _rpc(url, "covenant_advanceBlocks", 1)  # a newer blockhash exists now
        second = await _transfer(cached, payer)
        assert _blockhash(second) == _blockhash(first)
        assert second.last_valid_block_height == first.last_valid_block_height
    async with await SolanaAdapter.connect(solana_chain(), url=url, blockhash_ttl=0) as fresh:
        first = await _transfer(fresh, payer)
        await _rpc(url, "covenant_advanceBlocks", 1)
        second = await _transfer(fresh, payer)
    assert _blockhash(second) != _blockhash(first)
    assert second.last_valid_block_height > first.last_valid_block_height


async def test_a_cached_blockhash_seen_past_or_near_expiry_is_never_used(server):
    async with await SolanaAdapter.connect(solana_chain(), url=server.url, blockhash_ttl=60) as a:
        payer = await _funded(a, server.url)
        old = await _transfer(a, payer)
        blocks_to_near = old.last_valid_block_height - MIN_BLOCKS_LEFT - await a.height()
        await _rpc(server.url, "covenant_advanceBlocks", blocks_to_near)
        near = await _transfer(a, payer)  # not seen yet: the adapter does not know
        assert _blockhash(near) == _blockhash(old)
        height = await a.height()  # as the journal asks before deciding expiry
        renewed = await _transfer(a, payer)
        assert _blockhash(renewed) != _blockhash(old)
        assert renewed.last_valid_block_height - height > MIN_BLOCKS_LEFT
        await _rpc(server.url, "covenant_advanceBlocks", 151)
        await a.height()
        after = await _transfer(a, payer)
        assert after.last_valid_block_height > await a.height()
        assert _blockhash(after) not in {_blockhash(old), _blockhash(renewed)}


async def test_a_blockhash_the_node_no_longer_knows_is_dropped_from_the_cache(server):
    async with await SolanaAdapter.connect(solana_chain(), url=server.url, blockhash_ttl=60) as a:
        payer = await _funded(a, server.url)
        old = await _transfer(a, payer)
        await _rpc(server.url, "covenant_advanceBlocks", 151)  # expired; height() not asked
        stale = await _transfer(a, payer)
        assert _blockhash(stale) == _blockhash(old)
        with pytest.raises(TxExpired) as expired:
            await a.broadcast(await solana_signer(payer)(stale))
        assert not expired.value.signature_absent  # not sent; track decides by height
        after = await _transfer(a, payer)
        assert _blockhash(after) != _blockhash(old)
        await a.broadcast(await solana_signer(payer)(after))
        assert (await a.status(a.tx_id(await solana_signer(payer)(after)))).state == "final"


async def test_the_same_intent_built_twice_is_two_transactions(server):
    intent = NativeTransfer(to=str(Keypair().pubkey()), amount=SOL)
    async with await SolanaAdapter.connect(solana_chain(), url=server.url, blockhash_ttl=60) as a:
        payer = await _funded(a, server.url)
        first = await a.build(intent, str(payer.pubkey()))
        await _rpc(server.url, "covenant_advanceBlocks", 1)
        second = await a.build(intent, str(payer.pubkey()))
        assert second.digest != first.digest  # a reused blockhash would make them one
        sign = solana_signer(payer)
        for tx in (first, second):
            tx_id = await a.broadcast(await sign(tx))
            assert (await a.status(tx_id)).state == "final"
        assert await a.balance(intent.to) == 2 * SOL


async def test_the_rent_minimum_is_read_once_per_size(solana_server, monkeypatch):
    async with await SolanaAdapter.connect(solana_chain(), url=solana_server.url) as adapter:
        asked: list[int] = []
        read = adapter._backend.minimum_rent

        async def counted(size: int) -> int:
            asked.append(size)
            return await read(size)

        monkeypatch.setattr(adapter._backend, "minimum_rent", counted)
        payer = await _funded(adapter, solana_server.url)
        for amount in (SOL, SOL + 1, SOL + 2):  # each creates an account: rent checked
            await _transfer(adapter, payer, amount)
        sizes = [await adapter.minimum_rent(size) for size in (0, 82, 0, 82)]
    assert asked == [0, 82]
    assert sizes[0] == sizes[2] < sizes[1] == sizes[3]


# -- the wire: commitment, preflight, one send ----------------------------------------


@pytest.fixture
async def failing_node(unused_tcp_port):
    """Answers getGenesisHash and simulateTransaction (ok); drops sendTransaction's
    connection without an answer. Records every request's params."""
    calls: dict[str, list[object]] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        calls.setdefault(body["method"], []).append(body["params"])
        if body["method"] == "sendTransaction":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        simulated: dict[str, object] = {"err": None, "logs": [], "unitsConsumed": 150}
        result: object = {"context": {"slot": 1}, "value": simulated}
        if body["method"] == "getGenesisHash":
            result = str(Hash.new_unique())
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": result})

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    yield f"http://127.0.0.1:{unused_tcp_port}", calls
    await runner.cleanup()


async def test_a_send_goes_out_once_with_preflight_off_after_a_confirmed_simulation(
    failing_node,
):
    url, calls = failing_node
    payer = Keypair()
    message = MessageV0.try_compile(
        payer.pubkey(),
        [
            transfer(
                TransferParams(from_pubkey=payer.pubkey(), to_pubkey=payer.pubkey(), lamports=1)
            )
        ],
        [],
        Hash.new_unique(),
    )
    async with await SolanaAdapter.connect(solana_chain(), url=url) as adapter:
        with pytest.raises(RpcUnreachable, match=r"sendTransaction: endpoint unreachable"):
            await adapter.broadcast(bytes(VersionedTransaction(message, [payer])))
    [(_, simulate_options)] = calls["simulateTransaction"]
    assert simulate_options == {"encoding": "base64", "sigVerify": True, "commitment": "confirmed"}
    [(_, send_options)] = calls["sendTransaction"]  # exactly once: never resent blindly
    assert send_options == {"encoding": "base64", "skipPreflight": True, "maxRetries": 0}


async def _until(predicate, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)
