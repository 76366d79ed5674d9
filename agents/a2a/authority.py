"""Whether another operator's agent has the authority for a deal: an
AgentAuthorityCredential (``wallets.credentials``, the VC-JWT Covenant issues its own
agents) presented in its card, issued by an operator this deployment trusts, valid now,
for that agent's DID, not revoked, and with limits that cover the deal.

The issuer's revocation list is fetched from the URL its card names and cached for at
most ``max_age``; a list that cannot be fetched, or does not verify against the issuer,
refuses every credential of that issuer until it can (fail closed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from agents.a2a.peers import Peer
from config.errors import CredentialError
from wallets.credentials import RevocationList, VerifiedCredential, verify_credential
from wallets.jws import JwsError, verify_jws

MAX_LIST_BYTES = 1024 * 1024


class RevocationCache:
    """Revocation lists by URL, each fetched again once older than `max_age` seconds."""

    def __init__(
        self,
        max_age: float,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self._client = client
        self._clock = clock
        self._lists: dict[tuple[str, str], tuple[float, RevocationList]] = {}
        self.fetches = 0

    async def get(self, url: str, *, issuer: str) -> RevocationList:
        """The list at `url`, signed by `issuer`; CredentialError if it cannot be had."""
        cached = self._lists.get((url, issuer))
        if cached is not None and self._clock() - cached[0] < self.max_age:
            return cached[1]
        revocations = await self._fetch(url, issuer)
        self._lists[(url, issuer)] = (self._clock(), revocations)
        return revocations

    async def _fetch(self, url: str, issuer: str) -> RevocationList:
        self.fetches += 1
        own = self._client is None
        client = self._client or httpx.AsyncClient(timeout=10)
        try:
            reply = await client.get(url, follow_redirects=False)
            if reply.status_code != 200 or len(reply.content) > MAX_LIST_BYTES:
                raise CredentialError(
                    f"revocation list {url} answered {reply.status_code}; no credential of "
                    f"{issuer} is accepted until it can be read",
                    reason="revocation-unreachable",
                )
            payload = verify_jws(reply.text.strip(), expected_did=issuer).claims()
            return RevocationList(str(entry["id"]) for entry in payload["revoked"])
        except httpx.HTTPError as exc:
            raise CredentialError(
                f"revocation list {url} is unreachable ({exc}); no credential of {issuer} "
                "is accepted until it can be read",
                reason="revocation-unreachable",
            ) from exc
        except (JwsError, KeyError, TypeError, ValueError) as exc:
            raise CredentialError(
                f"revocation list {url} does not verify against {issuer}: {exc}",
                reason="revocation-list-invalid",
            ) from exc
        finally:
            if own:
                await client.aclose()


async def verify_authority(
    peer: Peer,
    *,
    trusted: Sequence[str],
    revocations: RevocationCache,
    now: datetime | None = None,
) -> VerifiedCredential:
    """The peer's credential if every check holds; CredentialError with the reason."""
    if peer.operator not in trusted:
        raise CredentialError(
            f"{peer.name} ({peer.did}) belongs to operator {peer.operator}, which this "
            "caller does not trust; trust it explicitly (peers show --trust DID) to deal with it",
            reason="untrusted-operator",
        )
    if peer.credential is None or peer.revocations is None:
        raise CredentialError(
            f"{peer.name}'s card presents no authority credential (or no revocation list)",
            reason="no-credential",
        )
    listed = await revocations.get(peer.revocations, issuer=peer.operator)
    return verify_credential(
        peer.credential,
        issuer=peer.operator,
        subject=peer.did,
        revocations=listed,
        now=now or datetime.now(UTC),
    )


def covers(credential: VerifiedCredential, chain: str, asset: str, amount: Decimal) -> str | None:
    """Why `credential` does not cover a deal of `amount` `asset` on `chain`, or None."""
    authority = credential.authority
    if chain not in authority.chains:
        return (
            f"the credential does not cover chain {chain} (it covers {', '.join(authority.chains)})"
        )
    if asset not in authority.assets:
        return f"the credential does not cover {asset} (it covers {', '.join(authority.assets)})"
    limit = authority.per_transaction.get(asset)
    if limit is not None and amount > limit:
        return f"{amount} {asset} is over the credential's per-transaction limit {limit}"
    return None
