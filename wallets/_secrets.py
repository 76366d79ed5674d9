"""An opaque holder for key material that cannot leak by accident.

A :class:`Secret` has no public attribute that returns its bytes; its ``repr`` and
``str`` are redacted and it refuses to be pickled or copied out by ``copy``. Code inside
``wallets`` reads the bytes with :func:`_reveal` at the moment it signs or derives.
"""

from __future__ import annotations

from typing import Any, NoReturn


class Secret:
    """Key material (a seed, a private key, an HMAC key) held privately."""

    __slots__ = ("__value",)

    def __init__(self, value: bytes) -> None:
        self.__value = bytes(value)

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled; key material stays in the keystore")

    def __copy__(self) -> NoReturn:
        raise TypeError("a Secret cannot be copied")

    def __deepcopy__(self, _memo: Any) -> NoReturn:
        raise TypeError("a Secret cannot be copied")

    def __len__(self) -> int:
        return len(self.__value)


def _reveal(secret: Secret) -> bytes:
    """The bytes inside `secret`; only for signing and derivation inside wallets/."""
    return secret._Secret__value  # type: ignore[attr-defined,no-any-return]
