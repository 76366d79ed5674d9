"""EVM adapter behaviour on anvil and py-evm: chain id, fees, nonces, reverts, finality."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from eth_abi.abi import encode
from eth_account import Account

from chains._store import NonceStore
from chains.base import ContractCall, FeeAboveCap, NativeTransfer, TokenTransfer, TxId, TxStatus
from chains.families.evm._pyevm import funded_keys, pyevm_provider
from chains.families.evm.adapter import EvmAdapter
from chains.journal import TxJournal
from chains.sender import send, send_intent
from config.errors import RpcUnreachable, TransactionReverted, WrongChainId
from tests.chains._evm_helpers import ECHO_REVERT_RUNTIME, deploy, deploy_token, init_code
from tests.chains.conftest import ANVIL_KEY, evm_chain, evm_signer, needs_anvil, new_evm_address

pytestmark = [needs_anvil, pytest.mark.anvil]

SENDER = Account.from_key(ANVIL_KEY).address
ECHO_ABI = (
    {"type": "function", "name": "Error", "inputs": [{"name": "m", "type": "string"}]},
    {"type": "function", "name": "Panic", "inputs": [{"name": "c", "type": "uint256"}]},
    {
        "type": "function",
        "name": "TooPoor",
        "inputs": [{"name": "have", "type": "uint256"}, {"name": "want", "type": "uint256"}],
    },
    {
        "type": "error",
        "name": "TooPoor",
        "inputs": [{"name": "have", "type": "uint256"}, {"name": "want", "type": "uint256"}],
    },
)


async def test_wrong_chain_id_is_refused_at_connect(anvil_factory):
    node = anvil_factory(31338)
    with pytest.raises(WrongChainId, match=r"31338.*31337"):
        await EvmAdapter.connect(evm_chain(31337), url=node.url)


async def test_wrong_chain_id_is_refused_in_process():
    with pytest.raises(WrongChainId):
        await EvmAdapter.connect(evm_chain(10), provider=pyevm_provider(8453))


async def test_unreachable_endpoint_is_a_clear_error():
    with pytest.raises(RpcUnreachable, match="unreachable"):
        await EvmAdapter.connect(evm_chain(), url="http://127.0.0.1:9")


async def test_fees_respect_the_caps_in_wei(anvil_factory):
    node = anvil_factory()
    chain = evm_chain(fees={"max_fee_gwei": "1.5", "max_priority_fee_gwei": "0.25"})
    async with await EvmAdapter.connect(chain, url=node.url) as adapter:
        tx = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
    assert tx.tx["maxPriorityFeePerGas"] == 250_000_000
    assert tx.tx["maxFeePerGas"] == 1_500_000_000
    assert (tx.tx["gas"], tx.tx["chainId"], tx.tx["type"]) == (21_000, 31337, 2)


async def test_base_fee_above_the_cap_refuses_to_build(anvil_factory):
    node = anvil_factory()  # anvil starts with a 1 gwei base fee
    chain = evm_chain(fees={"max_fee_gwei": "0.5", "max_priority_fee_gwei": "0.1"})
    async with await EvmAdapter.connect(chain, url=node.url) as adapter:
        with pytest.raises(FeeAboveCap, match=r"max_fee_gwei 0\.5"):
            await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)


async def test_replacement_bumps_both_fees_by_at_least_an_eighth(anvil_factory):
    node = anvil_factory()
    async with await EvmAdapter.connect(evm_chain(), url=node.url) as adapter:
        tx = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        bumped = await adapter.replacement(tx)
    for field in ("maxFeePerGas", "maxPriorityFeePerGas"):
        assert bumped.tx[field] * 8 >= tx.tx[field] * 9
    assert bumped.nonce == tx.nonce
    assert bumped.digest != tx.digest


async def test_replacement_above_the_cap_is_refused(anvil_factory):
    node = anvil_factory()
    chain = evm_chain(fees={"max_fee_gwei": "2", "max_priority_fee_gwei": "1"})
    async with await EvmAdapter.connect(chain, url=node.url) as adapter:
        tx = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        assert tx.tx["maxFeePerGas"] == 2 * 10**9
        with pytest.raises(FeeAboveCap, match="replacing nonce 0"):
            await adapter.replacement(tx)


async def test_nonces_survive_a_restart_and_reuse_abandoned_reservations(anvil_factory, engine):
    node = anvil_factory()
    nonces = NonceStore(engine)
    async with await EvmAdapter.connect(evm_chain(), url=node.url, nonces=nonces) as adapter:
        first = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        second = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
    assert (first.nonce, second.nonce) == (0, 1)
    # A new process with the same store continues after the reservations ...
    async with await EvmAdapter.connect(
        evm_chain(), url=node.url, nonces=NonceStore(engine)
    ) as adapter:
        third = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
    assert third.nonce == 2
    # ... and once reservations are stale and nothing was journaled, nonce 0 is reused.
    stale = NonceStore(engine, reservation_ttl=timedelta(0))
    async with await EvmAdapter.connect(evm_chain(), url=node.url, nonces=stale) as adapter:
        fourth = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
    assert fourth.nonce == 0


async def test_an_abandoned_build_gives_its_nonce_back_at_once(anvil_factory, engine):
    """A payment a policy denied must not leave the next one stuck behind a nonce gap."""
    node = anvil_factory()
    async with await EvmAdapter.connect(
        evm_chain(), url=node.url, nonces=NonceStore(engine)
    ) as adapter:
        denied = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        await adapter.abandon(denied)
        retried = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        later = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        await adapter.abandon(retried)  # below a later reservation: the gap is refilled
        last = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        after = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
    assert (denied.nonce, retried.nonce, later.nonce, last.nonce, after.nonce) == (0, 0, 1, 0, 2)


async def test_journaled_nonce_is_never_reused_even_when_reservations_are_stale(
    anvil_factory, engine
):
    node = anvil_factory(no_mining=True)
    stale = NonceStore(engine, reservation_ttl=timedelta(0))
    journal = TxJournal(engine)
    async with await EvmAdapter.connect(evm_chain(), url=node.url, nonces=stale) as adapter:
        tx = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        signed = await evm_signer(ANVIL_KEY)(tx)
        journal.record(adapter.chain.name, tx, adapter.tx_id(signed), signed)
        await adapter._w3.provider.make_request("anvil_dropAllTransactions", [])
        nxt = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
    assert (tx.nonce, nxt.nonce) == (0, 1)


@pytest.mark.parametrize(
    ("function", "args", "reason"),
    [
        ("Error", ("not enough cheese",), "not enough cheese"),
        ("Panic", (0x11,), "Panic(0x11): arithmetic overflow or underflow"),
        ("TooPoor", (1, 2), "TooPoor(have=1, want=2)"),
    ],
)
async def test_reverts_are_decoded(anvil_factory, function, args, reason):
    node = anvil_factory()
    async with await EvmAdapter.connect(evm_chain(), url=node.url) as adapter:
        echo = await deploy(adapter, ANVIL_KEY, init_code(ECHO_REVERT_RUNTIME))
        call = ContractCall(to=echo, abi=ECHO_ABI, function=function, args=args)
        with pytest.raises(TransactionReverted) as caught:
            await adapter.build(call, SENDER)
    assert caught.value.reason == reason


async def test_reverts_are_decoded_in_process():
    provider = pyevm_provider(31337)
    key = funded_keys(provider)[0]
    sender = Account.from_key(key).address
    async with await EvmAdapter.connect(evm_chain(), provider=provider) as adapter:
        echo = await deploy(adapter, key, init_code(ECHO_REVERT_RUNTIME))
        for function, args, reason in [
            ("Error", ("nope",), "nope"),
            ("TooPoor", (3, 4), "TooPoor(have=3, want=4)"),
        ]:
            call = ContractCall(to=echo, abi=ECHO_ABI, function=function, args=args)
            with pytest.raises(TransactionReverted) as caught:
                await adapter.build(call, sender)
            assert caught.value.reason == reason


async def test_mined_revert_reports_failed_with_reason(anvil_factory, engine):
    node = anvil_factory()
    async with await EvmAdapter.connect(evm_chain(), url=node.url) as adapter:
        token, abi = await deploy_token(adapter, ANVIL_KEY)
        # Build while the sender holds tokens, then spend them first: the built
        # transaction is valid at build time and reverts (underflow) when mined.
        mint = ContractCall(to=token, abi=abi, function="mint", args=(SENDER, 10))
        sign = evm_signer(ANVIL_KEY)
        journal = TxJournal(engine)
        await send_intent(adapter, journal, mint, SENDER, sign)
        pay = TokenTransfer(token=token, to=new_evm_address(), amount=10)
        late = await adapter.build(pay, SENDER)
        early = await adapter.build(pay.model_copy(update={"to": new_evm_address()}), SENDER)
        early = early.model_copy(update={"tx": {**early.tx, "nonce": late.nonce}})
        late = late.model_copy(update={"tx": {**late.tx, "nonce": late.nonce + 1}})
        await send(adapter, journal, early, await sign(early))
        signed = await sign(late)
        await adapter._w3.eth.send_raw_transaction(signed)  # skip our simulation on purpose
        status = await _settled(adapter, adapter.tx_id(signed))
    assert status.state == "failed"
    assert status.reason == "Panic(0x11): arithmetic overflow or underflow"


async def test_erc20_transfer_and_balance(anvil_factory, engine):
    node = anvil_factory()
    async with await EvmAdapter.connect(
        evm_chain(), url=node.url, nonces=NonceStore(engine)
    ) as adapter:
        token, abi = await deploy_token(adapter, ANVIL_KEY)
        journal, sign, to = TxJournal(engine), evm_signer(ANVIL_KEY), new_evm_address()
        await send_intent(
            adapter,
            journal,
            ContractCall(to=token, abi=abi, function="mint", args=(SENDER, 1000)),
            SENDER,
            sign,
        )
        status = await send_intent(
            adapter, journal, TokenTransfer(token=token, to=to, amount=400), SENDER, sign
        )
        assert status.state == "final"
        assert await adapter.balance(to, token) == 400
        assert await adapter.balance(SENDER, token) == 600
        with pytest.raises(TransactionReverted, match="Panic"):
            await adapter.build(TokenTransfer(token=token, to=to, amount=601), SENDER)


async def test_finality_by_confirmations(anvil_factory, engine):
    node = anvil_factory()
    chain = evm_chain(finality={"confirmations": 2})
    async with await EvmAdapter.connect(chain, url=node.url) as adapter:
        tx = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        tx_id = await adapter.broadcast(await evm_signer(ANVIL_KEY)(tx))
        status = await _settled(adapter, tx_id)
        assert (status.state, status.finality) == ("included", "0/2 confirmations")
        await adapter._w3.provider.make_request("anvil_mine", [2])
        status = await adapter.status(tx_id)
    assert (status.state, status.finality) == ("final", "2/2 confirmations")


async def test_finality_by_block_tag(anvil_factory):
    node = anvil_factory()
    chain = evm_chain(finality={"block_tag": "finalized"})
    async with await EvmAdapter.connect(chain, url=node.url) as adapter:
        tx = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        tx_id = await adapter.broadcast(await evm_signer(ANVIL_KEY)(tx))
        status = await _settled(adapter, tx_id)
        finalized = (await adapter._w3.eth.get_block("finalized"))["number"]
        assert status.block is not None
        assert status.state == ("final" if finalized >= status.block else "included")
        await adapter._w3.provider.make_request("anvil_mine", [100])
        assert (await adapter.status(tx_id)).state == "final"


async def _settled(adapter: EvmAdapter, tx_id: TxId) -> TxStatus:
    """The status once anvil's automine has put the transaction in a block."""
    for _ in range(200):
        status = await adapter.status(tx_id)
        if status.state != "pending":
            return status
        await asyncio.sleep(0.01)
    raise AssertionError(f"{tx_id} never left pending")


def test_fee_caps_are_exact_decimal_to_wei():
    chain = evm_chain(fees={"max_fee_gwei": "0.000000001", "max_priority_fee_gwei": "0"})
    assert int(chain.fees.max_fee_gwei * Decimal(10**9)) == 1
    assert encode(["uint256"], [1])  # eth_abi available for the suite
