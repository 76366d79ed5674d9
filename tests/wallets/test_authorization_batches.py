"""Authorizations minted in one batch share a signature over a Merkle root, and each one
still authorizes exactly its own agent and digest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.errors import SignerError
from wallets.authorization import MAX_BATCH, Authorization, AuthorizationMint

TTL = timedelta(seconds=30)
MINT = AuthorizationMint()


def _grants(count: int) -> list[tuple[str, bytes]]:
    return [(f"agent-{i % 3}", i.to_bytes(32, "big")) for i in range(count)]


@settings(max_examples=40, deadline=None)
@given(count=st.integers(min_value=1, max_value=70))
def test_every_member_of_a_batch_verifies_for_its_own_digest_only(count: int) -> None:
    grants = _grants(count)
    minted = MINT.mint_many(grants, TTL)
    assert len({auth.signature for auth in minted}) == 1
    assert all(len(auth.proof) <= (count - 1).bit_length() for auth in minted)
    for (agent, digest), auth in zip(grants, minted, strict=True):
        MINT.verifier.check(auth, agent=agent, digest=digest)
        other = (int.from_bytes(digest, "big") + 1).to_bytes(32, "big")
        with pytest.raises(SignerError, match="is for digest"):
            MINT.verifier.check(auth, agent=agent, digest=other)


@settings(max_examples=25, deadline=None)
@given(count=st.integers(min_value=2, max_value=40), data=st.data())
def test_moving_a_field_between_members_breaks_the_signature(count: int, data) -> None:
    minted = MINT.mint_many(_grants(count), TTL)
    first, second = data.draw(st.lists(st.sampled_from(minted), min_size=2, max_size=2))
    if first is second:
        return
    for field in ("digest", "agent", "nonce", "proof", "position"):
        swapped = first.model_copy(update={field: getattr(second, field)})
        if getattr(swapped, field) == getattr(first, field):
            continue  # the two share this field's value (e.g. the same agent)
        with pytest.raises(SignerError, match="not signed by this runtime"):
            MINT.verifier.check(swapped, agent=swapped.agent, digest=swapped.digest)


def test_a_forged_proof_or_position_is_refused() -> None:
    auth = MINT.mint_many(_grants(5), TTL)[2]
    assert auth.proof, "a member of a batch of five carries a proof"
    flipped = bytes([auth.proof[0][0] ^ 1]) + auth.proof[0][1:]
    forgeries = [
        auth.model_copy(update={"proof": (flipped, *auth.proof[1:])}),
        auth.model_copy(update={"proof": auth.proof[:-1]}),
        auth.model_copy(update={"position": auth.position ^ 1}),
        auth.model_copy(update={"position": auth.position + (1 << len(auth.proof))}),
    ]
    for forged in forgeries:
        with pytest.raises(SignerError, match="not signed by this runtime"):
            MINT.verifier.check(forged, agent=forged.agent, digest=forged.digest)


def test_a_batch_is_bounded_and_rejects_a_bad_digest() -> None:
    with pytest.raises(SignerError, match="1 to"):
        MINT.mint_many([], TTL)
    with pytest.raises(SignerError, match="1 to"):
        MINT.mint_many(_grants(MAX_BATCH + 1), TTL)
    with pytest.raises(SignerError, match="32 bytes"):
        MINT.mint_many([("payer", b"\x00" * 32), ("payer", b"\x00" * 31)], TTL)


def test_an_authorization_round_trips_through_json() -> None:
    auth = MINT.mint_many(_grants(3), TTL)[1]
    again = Authorization.model_validate_json(auth.model_dump_json())
    MINT.verifier.check(again, agent=auth.agent, digest=auth.digest)
