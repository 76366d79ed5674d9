"""Signers sign only with a matching Authorization, and what they sign is real."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from config.errors import SignerError
from wallets.authorization import (
    AuthorizationMint,
    AuthorizationVerifier,
    evm_message_digest,
    evm_tx_digest,
    solana_message_digest,
)
from wallets.operator import OperatorWallets

RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _tx(nonce: int = 0, value: int = 10**15) -> dict[str, Any]:
    return {
        "type": 2,
        "chainId": 31337,
        "nonce": nonce,
        "to": RECIPIENT,
        "value": value,
        "gas": 21000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "data": b"",
    }


@pytest.fixture
def mint() -> AuthorizationMint:
    return AuthorizationMint()


def test_evm_signer_signs_the_authorized_transaction(wallets: OperatorWallets, mint) -> None:
    signer = wallets.agent("payer").evm_signer(mint.verifier)
    tx = _tx()
    signed = signer.sign(tx, mint.mint("payer", evm_tx_digest(tx), timedelta(seconds=30)))
    assert (
        Account.recover_transaction(signed.raw)
        == signer.address
        == wallets.agent("payer").evm_address
    )
    assert signed.digest == evm_tx_digest(tx)
    assert signed.raw[0] == 2
    assert len(signed.tx_hash) == 32


def test_evm_refusals(wallets: OperatorWallets, mint) -> None:
    signer = wallets.agent("payer").evm_signer(mint.verifier)
    tx, other = _tx(), _tx(value=10**18)
    digest = evm_tx_digest(tx)
    cases = {
        "no authorization": None,
        "for agent 'maker'": mint.mint("maker", digest, timedelta(seconds=30)),
        "not signed by this runtime": AuthorizationMint().mint(
            "payer", digest, timedelta(seconds=30)
        ),
        "is for digest": mint.mint("payer", evm_tx_digest(other), timedelta(seconds=30)),
    }
    for expected, authorization in cases.items():
        with pytest.raises(SignerError, match=expected):
            signer.sign(tx, authorization)


def test_expired_authorization_is_refused(wallets: OperatorWallets, mint) -> None:
    signer = wallets.agent("payer").evm_signer(mint.verifier)
    tx = _tx()
    authorization = mint.mint("payer", evm_tx_digest(tx), timedelta(milliseconds=1))
    time.sleep(0.01)
    with pytest.raises(SignerError, match="expired"):
        signer.sign(tx, authorization)


def test_an_edited_authorization_no_longer_verifies(wallets: OperatorWallets, mint) -> None:
    signer = wallets.agent("payer").evm_signer(mint.verifier)
    tx, other = _tx(), _tx(nonce=1)
    authorization = mint.mint("payer", evm_tx_digest(other), timedelta(seconds=30))
    forged = authorization.model_copy(update={"digest": evm_tx_digest(tx)})
    with pytest.raises(SignerError, match="not signed by this runtime"):
        signer.sign(tx, forged)


def test_evm_signer_refuses_legacy_and_foreign_sender(wallets: OperatorWallets, mint) -> None:
    signer = wallets.agent("payer").evm_signer(mint.verifier)
    legacy = {"nonce": 0, "to": RECIPIENT, "value": 1, "gas": 21000, "gasPrice": 1, "chainId": 1}
    with pytest.raises(SignerError, match="only EIP-1559"):
        signer.sign(legacy, None)
    foreign = {**_tx(), "from": RECIPIENT}
    with pytest.raises(SignerError, match="not from this agent"):
        signer.sign(foreign, mint.mint("payer", evm_tx_digest(_tx()), timedelta(seconds=30)))


def test_evm_messages_eip191_and_eip712(wallets: OperatorWallets, mint) -> None:
    signer = wallets.agent("payer").evm_signer(mint.verifier)
    text = encode_defunct(text="pay invoice 42")
    signed = signer.sign_message(
        text, mint.mint("payer", evm_message_digest(text), timedelta(seconds=5))
    )
    assert Account.recover_message(text, signature=signed.signature) == signer.address
    typed = encode_typed_data(full_message=_typed_data())
    with pytest.raises(SignerError, match="is for digest"):
        signer.sign_message(
            typed, mint.mint("payer", evm_message_digest(text), timedelta(seconds=5))
        )
    signed = signer.sign_message(
        typed, mint.mint("payer", evm_message_digest(typed), timedelta(seconds=5))
    )
    assert Account.recover_message(typed, signature=signed.signature) == signer.address


def _typed_data() -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "Order": [{"name": "amount", "type": "uint256"}, {"name": "to", "type": "address"}],
        },
        "primaryType": "Order",
        "domain": {"name": "covenant-test", "chainId": 31337},
        "message": {"amount": 5, "to": RECIPIENT},
    }


@pytest.fixture
def svm() -> LiteSVM:
    return LiteSVM()


def _transfer(frm: Pubkey, to: Pubkey, lamports: int):
    return transfer(TransferParams(from_pubkey=frm, to_pubkey=to, lamports=lamports))


def test_solana_legacy_transaction_lands_in_litesvm(wallets: OperatorWallets, mint, svm) -> None:
    signer = wallets.agent("maker").solana_signer(mint.verifier)
    svm.airdrop(signer.pubkey, 10**9)
    recipient = Keypair().pubkey()
    message = Message.new_with_blockhash(
        [_transfer(signer.pubkey, recipient, 5_000_000)], signer.pubkey, svm.latest_blockhash()
    )
    authorization = mint.mint("maker", solana_message_digest(message), timedelta(seconds=30))
    tx = signer.sign(message, authorization)
    assert isinstance(tx, Transaction)
    tx.verify()
    result = svm.send_transaction(tx)
    assert svm.get_balance(recipient) == 5_000_000, result


def test_solana_v0_with_a_co_signer_lands_in_litesvm(wallets: OperatorWallets, mint, svm) -> None:
    signer = wallets.agent("maker").solana_signer(mint.verifier)
    helper = Keypair()
    svm.airdrop(signer.pubkey, 10**9)
    svm.airdrop(helper.pubkey(), 10**9)
    recipient = Keypair().pubkey()
    instructions = [
        _transfer(signer.pubkey, recipient, 1_000_000),
        _transfer(helper.pubkey(), recipient, 2_000_000),
    ]
    message = MessageV0.try_compile(signer.pubkey, instructions, [], svm.latest_blockhash())
    authorization = mint.mint("maker", solana_message_digest(message), timedelta(seconds=30))
    with pytest.raises(SignerError, match="co_signers"):
        signer.sign(message, authorization)
    tx = signer.sign(message, authorization, co_signers=[helper])
    assert isinstance(tx, VersionedTransaction)
    assert all(tx.verify_with_results())
    svm.send_transaction(tx)
    assert svm.get_balance(recipient) == 3_000_000


def test_solana_refusals(wallets: OperatorWallets, mint, svm) -> None:
    signer = wallets.agent("maker").solana_signer(mint.verifier)
    recipient = Keypair().pubkey()
    message = Message.new_with_blockhash(
        [_transfer(signer.pubkey, recipient, 1)], signer.pubkey, svm.latest_blockhash()
    )
    other = Message.new_with_blockhash(
        [_transfer(signer.pubkey, recipient, 2)], signer.pubkey, svm.latest_blockhash()
    )
    with pytest.raises(SignerError, match="no authorization"):
        signer.sign(message, None)
    with pytest.raises(SignerError, match="is for digest"):
        signer.sign(message, mint.mint("maker", solana_message_digest(other), timedelta(seconds=5)))
    with pytest.raises(SignerError, match="for agent 'taker'"):
        signer.sign(
            message, mint.mint("taker", solana_message_digest(message), timedelta(seconds=5))
        )
    stranger = Keypair().pubkey()
    foreign = Message.new_with_blockhash(
        [_transfer(stranger, recipient, 1)], stranger, svm.latest_blockhash()
    )
    with pytest.raises(SignerError, match="not a required signer"):
        signer.sign(
            foreign, mint.mint("maker", solana_message_digest(foreign), timedelta(seconds=5))
        )


def test_solana_digest_is_sha256_of_the_signed_bytes(svm) -> None:
    payer = Keypair()
    ix = _transfer(payer.pubkey(), Keypair().pubkey(), 1)
    legacy = Message.new_with_blockhash([ix], payer.pubkey(), svm.latest_blockhash())
    v0 = MessageV0.try_compile(payer.pubkey(), [ix], [], svm.latest_blockhash())
    assert solana_message_digest(legacy) == hashlib.sha256(bytes(legacy)).digest()
    assert solana_message_digest(v0) == hashlib.sha256(b"\x80" + bytes(v0)).digest()


def test_signers_expose_no_key_material(wallets: OperatorWallets, mint) -> None:
    agent = wallets.agent("maker")
    for signer in (
        agent.evm_signer(mint.verifier),
        agent.solana_signer(mint.verifier),
        agent.jws_signer(),
    ):
        public = [name for name in dir(signer) if not name.startswith("_")]
        assert not {"key", "private_key", "secret", "seed", "keypair"} & set(public)
        assert "Secret" not in repr(signer)


def test_mint_ttl_is_bounded(mint) -> None:
    with pytest.raises(SignerError, match="ttl"):
        mint.mint("payer", b"\x00" * 32, timedelta(hours=2))
    with pytest.raises(SignerError, match="ttl"):
        mint.mint("payer", b"\x00" * 32, timedelta(0))


def test_a_verifier_cannot_be_built_from_a_home_made_key(mint) -> None:
    with pytest.raises(SignerError, match="only from AuthorizationMint"):
        AuthorizationVerifier(mint.verifier.public_key)


def test_signers_need_a_real_verifier(wallets: OperatorWallets) -> None:
    with pytest.raises(SignerError, match="AuthorizationVerifier"):
        wallets.agent("payer").evm_signer(object())  # type: ignore[arg-type]
    with pytest.raises(SignerError, match="AuthorizationVerifier"):
        wallets.agent("payer").solana_signer(None)  # type: ignore[arg-type]
