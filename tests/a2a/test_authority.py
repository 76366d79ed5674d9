"""Another operator's authority over real HTTP: the card presents the AgentAuthorityCredential
its operator issued; it counts only from a trusted operator, valid now, for that DID,
and not revoked in the list fetched from the operator's endpoint (cached at most
max_age, and refused outright when the list cannot be fetched). The valid case is the
negative control of every refusal."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

import main
from agents.a2a.authority import RevocationCache, covers, verify_authority
from agents.a2a.card import build_card, sign_card
from agents.a2a.messages import Inbox
from agents.a2a.peers import fetch_peer
from agents.a2a.server import HostedAgent, serving
from chains.devnet.processes import free_port
from config.errors import CredentialError
from config.models import A2aConfig
from tests.a2a._peer import other_operator
from wallets._secrets import Secret
from wallets.credentials import AgentAuthority, issue_credential, signed_list
from wallets.jws import JwsSigner

DEPLOYMENT = other_operator()
AUTHORITY = AgentAuthority(
    agent="seller", chains=("arb",), assets=("ETH",), per_transaction={"ETH": Decimal("1")}
)


def _signer() -> JwsSigner:
    return JwsSigner(Secret(os.urandom(32)))


@dataclass
class Operator:
    """The other operator: its key, its revoked ids (served live), its agent's card URL."""

    signer: JwsSigner
    revoked: set[str]
    url: str = ""
    up: bool = True


async def _serve(
    operator: Operator, agent: JwsSigner, credential: str | None
) -> AsyncIterator[str]:
    port = free_port()
    config = A2aConfig(listen=f"127.0.0.1:{port}")
    card = build_card(
        DEPLOYMENT,
        "seller",
        did=agent.did,
        accounts=["did:pkh:eip155:31337:0x90F79bf6EB2c4f870365E96a5CF3bc5A1b1A0cD1"],
        operator_did=operator.signer.did,
        public_url=config.base_url,
        credential=credential,
    )
    hosted = HostedAgent("seller", sign_card(card, agent), Inbox(agent.did))

    def revocations() -> str:
        if not operator.up:
            raise RuntimeError("the operator's list is gone")  # the endpoint answers 500
        return signed_list(operator.signer, operator.revoked)

    async with serving({"seller": hosted}, config, revocations) as url:
        yield f"{url}/agents/seller"


def _credential(operator: JwsSigner, subject: str, *, days: int = 30) -> str:
    now = datetime.now(UTC)
    return issue_credential(
        operator,
        subject,
        AUTHORITY,
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=days),
    )


@pytest.fixture
async def seller() -> AsyncIterator[tuple[Operator, JwsSigner, str]]:
    operator, agent = Operator(_signer(), set()), _signer()
    credential = _credential(operator.signer, agent.did)
    async for url in _serve(operator, agent, credential):
        operator.url = url
        yield operator, agent, credential


async def test_a_trusted_valid_credential_covers_the_deal(seller) -> None:
    operator, agent, _credential_token = seller
    peer = await fetch_peer(operator.url)
    verified = await verify_authority(
        peer, trusted=[operator.signer.did], revocations=RevocationCache(60)
    )
    assert (verified.subject, verified.issuer) == (agent.did, operator.signer.did)
    assert covers(verified, "arb", "ETH", Decimal("0.5")) is None
    assert "per-transaction limit 1" in str(covers(verified, "arb", "ETH", Decimal("2")))
    assert "does not cover SOL" in str(covers(verified, "arb", "SOL", Decimal("1")))


async def test_untrusted_operator_is_refused(seller) -> None:
    operator, _agent, _token = seller
    peer = await fetch_peer(operator.url)
    with pytest.raises(CredentialError) as refused:
        await verify_authority(peer, trusted=[_signer().did], revocations=RevocationCache(60))
    assert refused.value.reason == "untrusted-operator"


async def test_a_revocation_shows_once_the_cached_list_is_older_than_max_age(seller) -> None:
    operator, _agent, token = seller
    peer = await fetch_peer(operator.url)
    clock = [0.0]
    cache = RevocationCache(300, clock=lambda: clock[0])
    trusted = [operator.signer.did]
    await verify_authority(peer, trusted=trusted, revocations=cache)
    from wallets.credentials import _unverified_claims

    operator.revoked.add(_unverified_claims(token)["id"])
    await verify_authority(peer, trusted=trusted, revocations=cache)  # cached: still valid
    clock[0] = 301
    with pytest.raises(CredentialError) as refused:
        await verify_authority(peer, trusted=trusted, revocations=cache)
    assert refused.value.reason == "revoked"
    assert cache.fetches == 2


async def test_an_unreachable_revocation_list_refuses_fail_closed(seller) -> None:
    operator, _agent, _token = seller
    peer = await fetch_peer(operator.url)
    operator.up = False
    with pytest.raises(CredentialError) as refused:
        await verify_authority(peer, trusted=[operator.signer.did], revocations=RevocationCache(60))
    assert refused.value.reason == "revocation-unreachable"


async def test_expired_or_someone_elses_credential_is_refused() -> None:
    operator, agent = Operator(_signer(), set()), _signer()
    cases = {
        "expired": issue_credential(
            operator.signer,
            agent.did,
            AUTHORITY,
            valid_from=datetime.now(UTC) - timedelta(days=3),
            valid_until=datetime.now(UTC) - timedelta(days=1),
        ),
        "wrong-subject": _credential(operator.signer, _signer().did),
        "wrong-issuer": _credential(_signer(), agent.did),
    }
    for reason, credential in cases.items():
        async for url in _serve(operator, agent, credential):
            peer = await fetch_peer(url)
            with pytest.raises(CredentialError) as refused:
                await verify_authority(
                    peer, trusted=[operator.signer.did], revocations=RevocationCache(60)
                )
            assert refused.value.reason == reason, (reason, str(refused.value))


async def test_peers_show_reports_the_credential(seller, capsys) -> None:
    import asyncio

    operator, _agent, _token = seller
    capsys.readouterr()
    argv = ["peers", "show", operator.url, "--trust", operator.signer.did]
    assert await asyncio.to_thread(main.main, argv) == 0
    assert f"issued by {operator.signer.did} (trusted)" in capsys.readouterr().out
    assert await asyncio.to_thread(main.main, ["peers", "show", operator.url]) == 0
    assert "not checked (give --trust" in capsys.readouterr().out
    async with httpx.AsyncClient() as http:  # the list is the operator's signed JWS
        listed = await http.get(operator.url.split("/agents/")[0] + "/operator/revocations.jws")
    assert listed.status_code == 200
    assert listed.text.count(".") == 2
