"""Compact JWS (RFC 7515) with EdDSA (RFC 8037) keyed by ``did:key``.

Agents sign audit entries and messages to other agents with their DID key; the operator
signs credentials and its revocation list the same way. The header is always
``{"alg": "EdDSA", "kid": "<did>#<key>", "typ": ...}``; verification resolves the
``kid`` offline and accepts no other algorithm, so there is no algorithm confusion.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel, ConfigDict

from config.canonical import canonical
from config.errors import WalletError
from wallets._secrets import Secret, _reveal
from wallets.did import did_key, did_key_public_key, verification_method_id
from wallets.hd import ed25519_public_key


class JwsError(WalletError):
    """A JWS is malformed or its signature does not verify; ``reason`` says which."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class VerifiedJws(BaseModel):
    """A JWS whose EdDSA signature verified against the did:key in its ``kid``."""

    model_config = ConfigDict(frozen=True)

    header: dict[str, Any]
    payload: bytes
    did: str

    def claims(self) -> Any:
        """The payload parsed as JSON."""
        try:
            return json.loads(self.payload)
        except ValueError as exc:
            raise JwsError("the JWS payload is not JSON", reason="malformed") from exc


class JwsSigner:
    """Signs JWS with one DID key. It cannot sign chain transactions: the key lives on a
    separate derivation path (see :mod:`wallets.hd`) and only produces JWS."""

    __slots__ = ("__key", "_did")

    def __init__(self, key: Secret) -> None:
        self.__key = key
        self._did = did_key(ed25519_public_key(key))

    @property
    def did(self) -> str:
        """The signer's did:key."""
        return self._did

    @property
    def kid(self) -> str:
        """The verification method id placed in the JWS header."""
        return verification_method_id(self._did)

    def sign(self, payload: bytes, *, typ: str = "JWT") -> str:
        """A compact JWS over `payload`."""
        header = {"alg": "EdDSA", "kid": self.kid, "typ": typ}
        signing_input = f"{_b64(canonical(header))}.{_b64(payload)}"
        private = Ed25519PrivateKey.from_private_bytes(_reveal(self.__key))
        return f"{signing_input}.{_b64(private.sign(signing_input.encode('ascii')))}"

    def sign_json(self, claims: Mapping[str, Any], *, typ: str = "JWT") -> str:
        """A compact JWS over canonical JSON (sorted keys, no spaces) of `claims`."""
        return self.sign(canonical(claims), typ=typ)

    def __repr__(self) -> str:
        return f"JwsSigner(did={self._did!r})"


def verify_jws(token: str, *, expected_did: str | None = None) -> VerifiedJws:
    """Verify a compact EdDSA JWS against the did:key named in its header."""
    header, payload, signature, signing_input = _split(token)
    if header.get("alg") != "EdDSA":
        raise JwsError(f"JWS alg {header.get('alg')!r} is not EdDSA", reason="malformed")
    kid = header.get("kid")
    did = kid.split("#", 1)[0] if isinstance(kid, str) else ""
    if expected_did is not None and did != expected_did:
        raise JwsError(
            f"JWS is signed by {did!r}, expected {expected_did!r}", reason="wrong-signer"
        )
    try:
        public = Ed25519PublicKey.from_public_bytes(did_key_public_key(did))
        public.verify(signature, signing_input)
    except WalletError as exc:
        raise JwsError(f"JWS kid {kid!r} is not a did:key: {exc}", reason="malformed") from exc
    except InvalidSignature:
        raise JwsError(
            f"JWS signature by {did} does not verify: the token was altered", reason="tampered"
        ) from None
    return VerifiedJws(header=header, payload=payload, did=did)


def _split(token: str) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JwsError(
            f"a compact JWS has 3 dot-separated parts, got {len(parts)}", reason="malformed"
        )
    try:
        header = json.loads(_unb64(parts[0]))
        payload, signature = _unb64(parts[1]), _unb64(parts[2])
    except (ValueError, binascii.Error) as exc:
        raise JwsError(f"the JWS is not valid base64url JSON: {exc}", reason="malformed") from exc
    if not isinstance(header, dict):
        raise JwsError("the JWS header is not a JSON object", reason="malformed")
    return header, payload, signature, f"{parts[0]}.{parts[1]}".encode("ascii")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or "=" in text:
        raise ValueError("empty or padded base64url segment")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
