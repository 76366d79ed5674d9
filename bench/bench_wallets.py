"""Wallet speed: key derivations/s and signatures/s for secp256k1 and ed25519.

    .venv/bin/python bench/bench_wallets.py [--seconds 1.0]

Derivation is the full path from the 64-byte seed (what opening the wallets does per
agent). Gated signatures include checking the Authorization (an Ed25519 verify); raw
signatures are the curve operation alone, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bip_utils import Bip32Slip10Ed25519, Bip32Slip10Secp256k1
from eth_account import Account
from eth_account.messages import encode_defunct
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer

from policies.engine import Authorized, PolicyEngine
from policies.testing import make_action, make_context, make_deployment
from wallets._secrets import Secret, _reveal
from wallets.authorization import (
    Authorization,
    evm_message_digest,
    evm_tx_digest,
    solana_message_digest,
)
from wallets.hd import (
    EVM_PATH,
    SOLANA_PATH,
    _derive,
    derive_agent_keys,
    seed_from_mnemonic,
)
from wallets.keystore import DEFAULT_SCRYPT_N, Keystore
from wallets.operator import AgentWallet

MNEMONIC = "test test test test test test test test test test test junk"


def rate(label: str, operation: Callable[[int], object], seconds: float) -> None:
    """Run `operation(i)` for about `seconds` and print operations per second."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        operation(count)
        count += 1
    print(f"{label:<52} {count / elapsed:>10,.0f} /s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0)
    seconds = parser.parse_args().seconds
    seed = seed_from_mnemonic(MNEMONIC)
    rate(
        "secp256k1 derivation m/44'/60'/0'/0/i",
        lambda i: _derive(Bip32Slip10Secp256k1, seed, EVM_PATH.format(index=i)),
        seconds,
    )
    rate(
        "ed25519 derivation m/44'/501'/i'/0'",
        lambda i: _derive(Bip32Slip10Ed25519, seed, SOLANA_PATH.format(index=i)),
        seconds,
    )
    rate("all keys of one agent (4 paths)", lambda i: derive_agent_keys(seed, i), seconds)
    signatures(seed, seconds)
    keystore_open()


class _EngineAuthorizations:
    """Authorizations minted the production way: by the policy engine (KillSwitch only)."""

    def __init__(self) -> None:
        self.deployment = make_deployment(agents=("bench",))
        self.engine = PolicyEngine(self.deployment)

    def __call__(self, digest: bytes) -> Authorization:
        action = make_action(agent="bench", digest=digest)
        context = make_context(deployment=self.deployment, agent="bench")
        outcome = asyncio.run(self.engine.evaluate(action, context))
        assert isinstance(outcome, Authorized), outcome
        return outcome.authorization


def signatures(seed: Secret, seconds: float) -> None:
    wallet = AgentWallet("bench", derive_agent_keys(seed, 0))
    authorize = _EngineAuthorizations()
    verifier = authorize.engine.verifier
    evm, solana = wallet.evm_signer(verifier), wallet.solana_signer(verifier)
    jws = wallet.jws_signer()
    key = _reveal(derive_agent_keys(seed, 0).evm)
    tx = {"type": 2, "chainId": 31337, "nonce": 0, "to": evm.address, "value": 1, "gas": 21000,
          "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9, "data": b""}  # fmt: skip
    tx_auth = authorize(evm_tx_digest(tx))
    message = encode_defunct(text="bench")
    message_auth = authorize(evm_message_digest(message))
    solana_message = Message.new_with_blockhash(
        [
            transfer(
                TransferParams(from_pubkey=solana.pubkey, to_pubkey=Keypair().pubkey(), lamports=1)
            )
        ],
        solana.pubkey,
        Hash.default(),
    )
    solana_auth = authorize(solana_message_digest(solana_message))
    digest = evm_message_digest(message)
    keypair = Keypair.from_seed(_reveal(derive_agent_keys(seed, 0).solana))
    rate(
        "secp256k1 raw signature (eth_account)",
        lambda _: Account.unsafe_sign_hash(digest, key),
        seconds,
    )
    rate(
        "secp256k1 gated EIP-191 message signature",
        lambda _: evm.sign_message(message, message_auth),
        seconds,
    )
    rate("secp256k1 gated EIP-1559 transaction signature", lambda _: evm.sign(tx, tx_auth), seconds)
    rate("ed25519 raw signature (solders)", lambda _: keypair.sign_message(digest), seconds)
    rate(
        "ed25519 gated Solana legacy transaction signature",
        lambda _: solana.sign(solana_message, solana_auth),
        seconds,
    )
    rate("ed25519 JWS (DID key)", lambda i: jws.sign(str(i).encode()), seconds)
    rate(
        "authorizations by the policy engine (KillSwitch only)",
        lambda _: authorize(digest),
        seconds,
    )


def keystore_open() -> None:
    with tempfile.TemporaryDirectory() as directory:
        keystore = Keystore(directory)
        keystore.create(seed_from_mnemonic(MNEMONIC), "bench passphrase", metadata={})
        start = time.perf_counter()
        keystore.open("bench passphrase")
        label = "keystore open (scrypt n=2^18, r=8, p=1)"
        print(f"{label:<52} {time.perf_counter() - start:>10.2f} s")
    assert DEFAULT_SCRYPT_N == 2**18


if __name__ == "__main__":
    main()
