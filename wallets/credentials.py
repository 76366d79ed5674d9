"""The AgentAuthorityCredential: W3C VC Data Model 2.0, secured as a JWT (VC-JOSE-COSE).

The operator issues it to an agent's did:key. The JWT payload is the credential itself
(``typ: vc+jwt``, ``alg: EdDSA``). Verification checks, in order, and each failure has
its own :attr:`CredentialError.reason`: ``malformed``, ``wrong-issuer``, ``tampered``
(signature), ``wrong-subject``, ``not-yet-valid``, ``expired``, ``revoked``.

The revocation list is a JWS signed by the operator's DID key, kept in the data dir
(``revocations.jws``), so no one without the operator's passphrase can edit it; a list
that fails verification rejects every credential (``revocation-list-invalid``).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from config.errors import CredentialError
from wallets._files import write_file
from wallets.jws import JwsError, JwsSigner, _unb64, verify_jws

log = logging.getLogger(__name__)

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
CREDENTIAL_TYPE = "AgentAuthorityCredential"
REVOCATIONS_FILE = "revocations.jws"


class AgentAuthority(BaseModel):
    """What the operator authorizes an agent to do (the credential's claims)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    agent: str
    chains: tuple[str, ...]
    assets: tuple[str, ...]
    per_transaction: dict[str, Decimal] = Field(default_factory=dict, alias="perTransaction")
    per_day: dict[str, Decimal] = Field(default_factory=dict, alias="perDay")
    per_transaction_usd: Decimal | None = Field(default=None, alias="perTransactionUsd")
    per_day_usd: Decimal | None = Field(default=None, alias="perDayUsd")


class VerifiedCredential(BaseModel):
    """A credential that passed every check."""

    model_config = ConfigDict(frozen=True)

    id: str
    issuer: str
    subject: str
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    authority: AgentAuthority

    def as_claims(self) -> dict[str, Any]:
        """Flat claims in the shape of ``policies.base.AuthorityClaims``."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "agent": self.authority.agent,
            "chains": list(self.authority.chains),
            "assets": list(self.authority.assets),
            "per_transaction": dict(self.authority.per_transaction),
            "per_day": dict(self.authority.per_day),
            "per_transaction_usd": self.authority.per_transaction_usd,
            "per_day_usd": self.authority.per_day_usd,
            "not_before": self.valid_from,
            "expires_at": self.valid_until,
        }


def issue_credential(
    operator: JwsSigner,
    subject_did: str,
    authority: AgentAuthority,
    *,
    valid_from: datetime,
    valid_until: datetime,
) -> str:
    """A signed AgentAuthorityCredential JWT for `subject_did`."""
    if valid_until <= valid_from:
        raise CredentialError(
            f"validUntil {valid_until.isoformat()} must be after validFrom "
            f"{valid_from.isoformat()}",
            reason="malformed",
        )
    claims = authority.model_dump(mode="json", by_alias=True, exclude_none=True)
    credential = {
        "@context": [VC_CONTEXT],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "issuer": operator.did,
        "validFrom": _iso(valid_from),
        "validUntil": _iso(valid_until),
        "credentialSubject": {"id": subject_did, **claims},
    }
    log.info("issued credential %s to %s", credential["id"], subject_did)
    return operator.sign_json(credential, typ="vc+jwt")


def verify_credential(
    token: str,
    *,
    issuer: str,
    subject: str | None,
    revocations: RevocationList,
    now: datetime | None = None,
) -> VerifiedCredential:
    """Verify `token`; `subject` None accepts any subject (``did verify`` without --agent)."""
    claims = _unverified_claims(token)
    if claims.get("issuer") != issuer:
        raise CredentialError(
            f"credential issuer {claims.get('issuer')!r} is not the operator {issuer!r}",
            reason="wrong-issuer",
        )
    try:
        verify_jws(token, expected_did=issuer)
    except JwsError as exc:
        reason = "wrong-issuer" if exc.reason == "wrong-signer" else "tampered"
        raise CredentialError(f"credential rejected: {exc}", reason=reason) from exc
    credential = _parse(claims)
    _check_subject_and_time(credential, subject, now or datetime.now(UTC))
    if revocations.is_revoked(credential.id):
        raise CredentialError(
            f"credential {credential.id} was revoked by the operator", reason="revoked"
        )
    return credential


def _unverified_claims(token: str) -> dict[str, Any]:
    parts = token.strip().split(".")
    try:
        claims = json.loads(_unb64(parts[1])) if len(parts) == 3 else None
    except ValueError:
        claims = None
    if not isinstance(claims, dict):
        raise CredentialError(
            "the credential is not a compact JWT with a JSON payload", reason="malformed"
        )
    return claims


def _parse(claims: dict[str, Any]) -> VerifiedCredential:
    try:
        if CREDENTIAL_TYPE not in claims["type"] or claims["@context"][0] != VC_CONTEXT:
            raise ValueError(f"type {claims['type']!r} is not a VC 2.0 {CREDENTIAL_TYPE}")
        subject = dict(claims["credentialSubject"])
        return VerifiedCredential(
            id=claims["id"],
            issuer=claims["issuer"],
            subject=subject.pop("id"),
            valid_from=claims["validFrom"],
            valid_until=claims["validUntil"],
            authority=AgentAuthority.model_validate(subject),
        )
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise CredentialError(f"the credential is malformed: {exc}", reason="malformed") from exc


def _check_subject_and_time(
    credential: VerifiedCredential, subject: str | None, now: datetime
) -> None:
    if subject is not None and credential.subject != subject:
        raise CredentialError(
            f"credential subject {credential.subject!r} is not {subject!r}", reason="wrong-subject"
        )
    if now < credential.valid_from:
        raise CredentialError(
            f"credential is not valid before {credential.valid_from.isoformat()}",
            reason="not-yet-valid",
        )
    if now >= credential.valid_until:
        raise CredentialError(
            f"credential expired at {credential.valid_until.isoformat()}; issue a new one with "
            "`did issue-credential`",
            reason="expired",
        )


class RevocationList:
    """Credential ids the operator revoked, stored as a JWS signed by the operator."""

    def __init__(self, revoked: Iterable[str] = ()) -> None:
        self._revoked = frozenset(revoked)

    def is_revoked(self, credential_id: str) -> bool:
        """Whether `credential_id` is revoked."""
        return credential_id in self._revoked

    @property
    def revoked(self) -> frozenset[str]:
        """Every revoked credential id."""
        return self._revoked

    @classmethod
    def load(cls, path: Path, *, issuer: str) -> RevocationList:
        """Read and verify the list at `path`; a missing file is an empty list."""
        if not path.exists():
            return cls()
        try:
            verified = verify_jws(path.read_text(encoding="utf-8"), expected_did=issuer)
            payload = verified.claims()
            revoked = [str(entry["id"]) for entry in payload["revoked"]]
        except (OSError, JwsError, KeyError, TypeError) as exc:
            raise CredentialError(
                f"revocation list {path} does not verify against the operator {issuer}: {exc}; "
                "no credential is accepted until it is restored",
                reason="revocation-list-invalid",
            ) from exc
        return cls(revoked)

    @staticmethod
    def revoke(path: Path, credential_id: str, operator: JwsSigner) -> RevocationList:
        """Add `credential_id` to the list at `path` and re-sign it with the operator key."""
        current = RevocationList.load(path, issuer=operator.did)
        revoked = sorted(current.revoked | {credential_id})
        write_file(path, signed_list(operator, revoked).encode(), mode=0o644)
        log.info("revoked credential %s (list %s)", credential_id, path)
        return RevocationList(revoked)


def signed_list(operator: JwsSigner, revoked: Iterable[str]) -> str:
    """The revocation list of `operator` naming `revoked`, as the JWS others fetch."""
    payload = {
        "issuer": operator.did,
        "updated": _iso(datetime.now(UTC)),
        "revoked": [{"id": item} for item in sorted(revoked)],
    }
    return operator.sign_json(payload, typ="revocation-list+jwt")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
