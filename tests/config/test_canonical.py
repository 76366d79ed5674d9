"""Canonical JSON: RFC 8785 bytes (checked against the `rfc8785` package), the same as the
encoding older audit logs were hashed with, exact big integers, and floats refused."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from config.canonical import NotCanonical, canonical, sha256_hex

# Keys and strings from the Basic Multilingual Plane (what Covenant writes: names,
# addresses, hex digests, decimal strings, model text), ints of any size, bool, null.
bmp_text = st.text(st.characters(max_codepoint=0xFFFF, codec="utf-8"))
any_text = st.text(st.characters(codec="utf-8"))
SAFE = 2**53 - 1  # RFC 8785 numbers are IEEE doubles


def values(text: st.SearchStrategy[str], ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | ints | text,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=20,
    )


json_values = values(bmp_text, st.integers())


@given(values(any_text, st.integers(-SAFE, SAFE)))
def test_the_bytes_are_rfc8785s(value: Any) -> None:
    assert canonical(value) == rfc8785.dumps(value)


def test_integers_beyond_doubles_are_written_exactly() -> None:
    wei = 123_456_789_012_345_678_901  # 123.45 ETH in wei: RFC 8785 would round it
    assert canonical({"amount": wei}) == b'{"amount":123456789012345678901}'
    with pytest.raises(rfc8785.IntegerDomainError):
        rfc8785.dumps({"amount": wei})


def legacy(value: Any) -> bytes:
    """How audit entries were encoded before this module existed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@given(json_values)
def test_signed_values_encode_exactly_as_before(value: Any) -> None:
    assert canonical(value) == legacy(value)


def test_keys_sort_by_utf16_code_units_as_the_rfc_says() -> None:
    """Negative control for the property above: where RFC 8785 and Python's sort differ
    (a key beyond the BMP against one near its top), the kernel follows the RFC."""
    value = {"\U0001f600": 1, "\uff61": 2}  # UTF-16: d83d... sorts before ff61
    assert canonical(value) == '{"\U0001f600":1,"\uff61":2}'.encode()
    assert legacy(value) != canonical(value)


def test_rfc8785_example_strings_and_numbers() -> None:
    # RFC 8785 section 3.2.2.2: only the control characters, quote and backslash are escaped.
    assert canonical({"s": '\u20ac$\u000f\nA\'B"\\\\"/'}) == (
        '{"s":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'.encode()
    )
    assert (
        canonical([Decimal("0.10"), 10**30, True, None])
        == b'["0.10",1000000000000000000000000000000,true,null]'
    )


@pytest.mark.parametrize(
    ("value", "field"),
    [({"amount": 0.1}, "amount"), ({"legs": [{"fee": 1.5}]}, r"legs\[0\].fee"), (b"x", "root")],
)
def test_what_json_cannot_carry_exactly_is_refused_by_name(value: Any, field: str) -> None:
    with pytest.raises(NotCanonical, match=field):
        canonical(value)


def test_digest_is_sha256_of_the_canonical_bytes() -> None:
    import hashlib

    assert sha256_hex({"b": 1, "a": "x"}) == hashlib.sha256(b'{"a":"x","b":1}').hexdigest()
