"""Canonical JSON: the one encoding of every value that is hashed, stored under a hash,
or signed.

It is RFC 8785 (the JSON Canonicalization Scheme) over the values Covenant writes: keys
sorted by their UTF-16 code units, no whitespace, strings in UTF-8 with only the escapes
the RFC allows. Two deliberate limits: floats are refused (money and confidences travel
as decimal strings; a float has already lost the value), and integers are written
exactly at any size, where RFC 8785 would pass them through an IEEE double: wei amounts
pass 2**53 and must not be rounded. Up to 2**53 the bytes are RFC 8785's (the tests hold
this module to the `rfc8785` package on generated values).

The same bytes as ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` for keys in the Basic Multilingual Plane, the encoding earlier
audit logs were hashed with, so those logs still verify.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


class NotCanonical(ValueError):
    """The value holds something canonical JSON does not carry (a float, an object)."""


def canonical(value: Any) -> bytes:
    """The canonical bytes of `value` (mappings, sequences, str, int, bool, None, Decimal)."""
    return json.dumps(
        _ordered(plain(value)), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def sha256_hex(value: Any) -> str:
    """SHA-256 (hex) of the canonical bytes of `value`."""
    return hashlib.sha256(canonical(value)).hexdigest()


def plain(value: Any, path: str = "") -> Any:
    """`value` as plain JSON types; NotCanonical names the first field that is not."""
    if isinstance(value, Mapping):
        return {
            str(key): plain(item, f"{path}.{key}" if path else str(key))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [plain(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, float):
        raise NotCanonical(f"field {path or '(root)'} is a float; write it as a decimal string")
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, str | int):  # bool is an int
        return value
    raise NotCanonical(
        f"field {path or '(root)'} is a {type(value).__name__}, which JSON does not carry; "
        "convert it to a string or number first"
    )


def _ordered(value: Any) -> Any:
    # json.dumps keeps a dict's insertion order; RFC 8785 orders keys by UTF-16 code units.
    if isinstance(value, dict):
        return {key: _ordered(value[key]) for key in sorted(value, key=_utf16)}
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")
