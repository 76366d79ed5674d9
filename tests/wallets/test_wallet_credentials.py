"""AgentAuthorityCredential: issue, verify, and every rejection with its own reason."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from config.errors import CredentialError
from wallets._secrets import Secret
from wallets.credentials import (
    AgentAuthority,
    RevocationList,
    issue_credential,
    verify_credential,
)
from wallets.jws import JwsError, JwsSigner, verify_jws
from wallets.operator import OperatorWallets, authority_from_config

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
AUTHORITY = AgentAuthority(
    agent="payer",
    chains=("arbitrum-local",),
    assets=("ETH",),
    per_transaction={"ETH": Decimal("0.1")},
    per_day={"ETH": Decimal("0.2")},
)


def _issue(
    wallets: OperatorWallets, *, signer: JwsSigner | None = None, agent: str = "payer"
) -> str:
    return issue_credential(
        signer or wallets.operator_signer(),
        wallets.agent(agent).did,
        AUTHORITY,
        valid_from=NOW,
        valid_until=NOW + timedelta(days=1),
    )


def _verify(wallets: OperatorWallets, token: str, *, now: datetime = NOW, agent: str = "payer"):
    return verify_credential(
        token,
        issuer=wallets.did,
        subject=wallets.agent(agent).did,
        revocations=wallets.revocations(),
        now=now,
    )


def _reason(wallets: OperatorWallets, token: str, **kwargs) -> str:
    with pytest.raises(CredentialError) as caught:
        _verify(wallets, token, **kwargs)
    return caught.value.reason


def test_a_fresh_credential_verifies(wallets: OperatorWallets) -> None:
    verified = _verify(wallets, _issue(wallets))
    assert verified.authority == AUTHORITY
    assert verified.issuer == wallets.did
    assert verified.subject == wallets.agent("payer").did
    claims = verified.as_claims()
    assert claims["per_transaction"] == {"ETH": Decimal("0.1")}
    assert claims["expires_at"] == NOW + timedelta(days=1)


def test_credential_is_a_vc2_jwt(wallets: OperatorWallets) -> None:
    header_b64, payload_b64, _ = _issue(wallets).split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    assert header == {"alg": "EdDSA", "kid": wallets.operator_signer().kid, "typ": "vc+jwt"}
    assert payload["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert payload["type"] == ["VerifiableCredential", "AgentAuthorityCredential"]
    assert payload["validFrom"] == "2026-06-01T12:00:00Z"
    assert payload["credentialSubject"]["perDay"] == {"ETH": "0.2"}


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["credentialSubject"]["perTransaction"] = {"ETH": "1000"}
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


def test_each_rejection_has_its_own_reason(wallets: OperatorWallets) -> None:
    token = _issue(wallets)
    stranger = JwsSigner(Secret(b"\x07" * 32))
    reasons = {
        "tampered": _reason(wallets, _tamper(token)),
        "wrong-issuer": _reason(wallets, _issue(wallets, signer=stranger)),
        "expired": _reason(wallets, token, now=NOW + timedelta(days=2)),
        "not-yet-valid": _reason(wallets, token, now=NOW - timedelta(seconds=1)),
        "wrong-subject": _reason(wallets, token, agent="taker"),
        "malformed": _reason(wallets, "not.a-jwt"),
    }
    wallets.revoke(_verify(wallets, token).id)
    reasons["revoked"] = _reason(wallets, token)
    assert reasons == {reason: reason for reason in reasons}


def test_revocation_only_hits_the_revoked_credential(wallets: OperatorWallets) -> None:
    first, second = _issue(wallets), _issue(wallets)
    wallets.revoke(_verify(wallets, first).id)
    assert _verify(wallets, second).authority == AUTHORITY
    assert len(wallets.revocations().revoked) == 1


def test_an_edited_revocation_list_rejects_everything(wallets: OperatorWallets) -> None:
    token = _issue(wallets)
    wallets.revoke("urn:uuid:00000000-0000-0000-0000-000000000000")
    path: Path = wallets.revocations_path
    path.write_text(_tamper_list(path.read_text()))
    assert _reason(wallets, token) == "revocation-list-invalid"


def _tamper_list(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["revoked"] = []
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


def test_a_list_signed_by_someone_else_is_refused(wallets: OperatorWallets, tmp_path: Path) -> None:
    path = tmp_path / "revocations.jws"
    RevocationList.revoke(path, "urn:uuid:x", JwsSigner(Secret(b"\x09" * 32)))
    with pytest.raises(CredentialError) as caught:
        RevocationList.load(path, issuer=wallets.did)
    assert caught.value.reason == "revocation-list-invalid"


def test_authority_from_the_agent_yaml(wallets: OperatorWallets, deployment) -> None:
    authority = authority_from_config(deployment, "payer")
    assert authority.chains == ("arbitrum-local",)
    assert authority.assets == ("ETH", "USDC")  # the demo payer pays its invoice in USDC
    assert authority.per_transaction == {"USDC": Decimal("100")}
    assert authority.per_day == {"USDC": Decimal("200")}


def test_jws_for_agent_messages(wallets: OperatorWallets) -> None:
    signer = wallets.agent("maker").jws_signer()
    token = signer.sign_json({"swap": "offer", "amount": "0.5"}, typ="covenant-msg+jwt")
    verified = verify_jws(token, expected_did=signer.did)
    assert verified.claims() == {"swap": "offer", "amount": "0.5"}
    assert verified.header["typ"] == "covenant-msg+jwt"
    with pytest.raises(JwsError) as caught:
        verify_jws(token, expected_did=wallets.agent("taker").did)
    assert caught.value.reason == "wrong-signer"
    header, _, signature = token.split(".")
    with pytest.raises(JwsError) as caught:
        verify_jws(f"{header}.eyJzd2FwIjoiZ2l2ZSJ9.{signature}")
    assert caught.value.reason == "tampered"


def test_jws_refuses_other_algorithms(wallets: OperatorWallets) -> None:
    token = wallets.agent("maker").jws_signer().sign(b"x")
    _, payload, signature = token.split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    with pytest.raises(JwsError, match="not EdDSA"):
        verify_jws(f"{none_header}.{payload}.{signature}")


def test_did_key_cannot_sign_chain_transactions(wallets: OperatorWallets) -> None:
    agent = wallets.agent("maker")
    assert agent.did != agent.solana_address
    from bip_utils import Base58Encoder

    from wallets.did import did_key_public_key

    assert Base58Encoder.Encode(did_key_public_key(agent.did)) != agent.solana_address
