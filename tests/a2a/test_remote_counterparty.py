"""Paying another operator's agent: the address book names it by DID and card URL, the
runtime fetches the card over HTTP, verifies it is signed by that DID, and pays only
the address its card lists for the chain. A card of another DID (a misdirected or
swapped URL) leaves the entry unverified, and nothing is paid."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.a2a.card import build_card, sign_card
from agents.a2a.messages import Inbox
from agents.a2a.server import HostedAgent, serving
from agents.app.runtime import open_runtime
from chains.devnet.processes import free_port
from config.loader import load_deployment
from config.models import A2aConfig, Deployment
from tests.a2a._peer import other_operator
from tests.agents.conftest import in_process_evm_chain
from wallets._secrets import Secret
from wallets.jws import JwsSigner
from wallets.operator import create_keystore

MNEMONIC = "test test test test test test test test test test test junk"
PASSPHRASE = "remote counterparty tests"
THEIRS = "0x90F79bf6EB2c4f870365E96a5CF3bc5A1b1A0cD1"  # the other operator's agent
ETH = 10**18


@pytest.fixture
async def their_card() -> AsyncIterator[tuple[str, JwsSigner]]:
    """The other operator's daemon: one agent whose card lists THEIRS on chain 31337."""
    port = free_port()
    config = A2aConfig(listen=f"127.0.0.1:{port}")
    agent, operator = JwsSigner(Secret(os.urandom(32))), JwsSigner(Secret(os.urandom(32)))
    card = build_card(
        other_operator(),
        "seller",
        did=agent.did,
        accounts=[f"did:pkh:eip155:31337:{THEIRS}"],
        operator_did=operator.did,
        public_url=config.base_url,
    )
    hosted = HostedAgent("seller", sign_card(card, agent), Inbox(agent.did))
    async with serving({"seller": hosted}, config) as url:
        yield f"{url}/agents/seller", agent


def _deployment(tmp_path: Path, card: str, did: str) -> Deployment:
    evm = in_process_evm_chain(tmp_path, "evm", fund="10")
    chain = evm["name"]
    data: dict[str, Any] = {
        "name": "ours",
        "operator": {"name": "op"},
        "chains": [evm],
        "assets": [{"symbol": "ETH", "chain": chain, "native": True, "decimals": 18}],
        "address_book": [{"name": "seller", "did": did, "card": card}],
        "planners": [
            {
                "name": "script",
                "kind": "scripted",
                "plans": [
                    {
                        "confidence": "0.9",
                        "actions": [
                            {
                                "kind": "transfer",
                                "chain": chain,
                                "asset": "ETH",
                                "amount": "0.05",
                                "counterparty": "seller",
                            }
                        ],
                    }
                ],
            }
        ],
        "agents": [
            {
                "name": "payer",
                "schedule": {"every": "1h"},
                "mandate": "Pay the seller.",
                "planner": "script",
                "chains": [chain],
                "policies": [
                    {"Allowlist": {"recipients": ["seller"]}},
                    {"SpendLimit": {"per_transaction": {"ETH": "0.1"}}},
                ],
            }
        ],
    }
    file = tmp_path / "ours.yaml"
    file.write_text(yaml.safe_dump(data))
    deployment = load_deployment(file)
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    return deployment


async def _pay_once(deployment: Deployment) -> tuple[list[str], int]:
    async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
        report = await runtime.agents["payer"].tick()
        (adapter,) = runtime.adapters.values()
        return [f"{r.state}: {r.summary}" for r in report.results], await adapter.balance(THEIRS)


async def test_the_address_comes_from_the_verified_card(tmp_path, their_card) -> None:
    url, agent = their_card
    results, received = await _pay_once(_deployment(tmp_path, url, agent.did))
    assert received == ETH // 20, results
    assert results[0].startswith("executed"), results


async def test_a_card_of_another_did_gets_nothing(tmp_path, their_card) -> None:
    url, _agent = their_card
    impostor = JwsSigner(Secret(os.urandom(32))).did  # the address book expects this DID
    results, received = await _pay_once(_deployment(tmp_path, url, impostor))
    assert received == 0
    assert "is not verified" in results[0], results
    assert "address book says seller is" in results[0], results


async def test_run_serves_each_agents_card_and_the_operators_revocation_list(
    tmp_path, their_card
) -> None:
    """The daemon's wiring (`a2a:` in the deployment): while the runtime runs, each agent's
    card is served, signed by the agent's keystore DID, and the operator's revocation list
    verifies against the operator's DID."""
    from agents.a2a.authority import RevocationCache
    from agents.a2a.peers import fetch_peer
    from agents.app.a2a import a2a_running

    url, agent = their_card
    deployment = _deployment(tmp_path, url, agent.did)
    port = free_port()
    data = deployment.model_dump(mode="json", exclude_none=True)
    data["a2a"] = {"listen": f"127.0.0.1:{port}"}
    file = tmp_path / "served.yaml"
    file.write_text(yaml.safe_dump(data))
    served = load_deployment(file)
    async with (
        open_runtime(served, PASSPHRASE) as runtime,
        a2a_running(runtime) as base,
    ):
        assert base == f"http://127.0.0.1:{port}"
        peer = await fetch_peer(f"{base}/agents/payer")
        assert (peer.did, peer.operator) == (
            runtime.wallets.agent("payer").did,
            runtime.wallets.did,
        )
        assert peer.revocations == f"{base}/operator/revocations.jws"
        listed = await RevocationCache(60).get(peer.revocations, issuer=runtime.wallets.did)
        assert listed.revoked == frozenset()
