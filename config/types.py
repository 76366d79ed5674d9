"""Validated scalar types shared by the deployment models.

Money is never a float: amounts are written in YAML as quoted decimal strings (or
integers) and become :class:`~decimal.Decimal`. Addresses are checked for their chain
family (EIP-55 checksum for EVM, base58 32-byte keys for Solana).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from apscheduler.triggers.cron import CronTrigger
from eth_utils.address import is_checksum_address, is_hex_address, to_checksum_address
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints
from solders.pubkey import Pubkey

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
"""A lowercase identifier used to refer to chains, agents, planners and counterparties."""


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError(
            f"amount {value!r} is a float; write it as a quoted decimal string, e.g. '{value}'"
        )
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        raise ValueError(f"amount must be a decimal string such as '1.25', got {value!r}")
    try:
        parsed = Decimal(value.strip())
    except InvalidOperation as exc:
        raise ValueError(f"amount {value!r} is not a decimal number such as '1.25'") from exc
    if not parsed.is_finite():
        raise ValueError(f"amount {value!r} must be a finite decimal number")
    return parsed


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError(f"amount {value} must be greater than zero")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError(f"amount {value} must not be negative")
    return value


def plain_amount(amount: Decimal) -> str:
    """`amount` in positional notation without trailing zeros, exactly (for messages:
    `0.100000000000000000` reads as `0.1`)."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


PositiveAmount = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_positive)]
"""A decimal amount greater than zero, written as a string ('0.05') or integer."""

NonNegativeAmount = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_non_negative)]
"""A decimal amount of zero or more."""


def _evm_address(value: Any) -> str:
    if not isinstance(value, str) or not is_hex_address(value):
        raise ValueError(f"{value!r} is not an EVM address (0x followed by 40 hex digits)")
    if value != value.lower() and not is_checksum_address(value):
        raise ValueError(
            f"{value!r} has a wrong EIP-55 checksum; did you mean {to_checksum_address(value)}?"
            " Copy the address again from a trusted source"
        )
    return to_checksum_address(value)


EvmAddress = Annotated[str, BeforeValidator(_evm_address)]
"""An EVM address; mixed case must carry a valid EIP-55 checksum. Stored checksummed."""

_BASE58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]+$")


def _solana_address(value: Any) -> str:
    if not isinstance(value, str) or not _BASE58.match(value):
        raise ValueError(f"{value!r} is not a Solana address (base58 text)")
    try:
        return str(Pubkey.from_string(value))
    except ValueError as exc:
        raise ValueError(f"{value!r} does not decode to a 32-byte Solana public key") from exc


SolanaAddress = Annotated[str, BeforeValidator(_solana_address)]
"""A Solana public key in base58 that decodes to exactly 32 bytes."""


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _weekday_part(part: str) -> str:
    """One crontab day-of-week item (0 or 7 = Sunday) as APScheduler day names."""
    body, _, step_text = part.partition("/")
    step = int(step_text) if step_text else 1
    if body == "*" and not step_text:
        return "*"
    if body == "*":
        first, last = 0, 6
    elif "-" in body:
        first_text, last_text = body.split("-", 1)
        first, last = _weekday_number(first_text), _weekday_number(last_text)
    else:
        first = last = _weekday_number(body)
    if step < 1 or last < first:
        raise ValueError(f"bad day-of-week item {part!r}")
    return ",".join(_WEEKDAYS[day] for day in range(first, last + 1, step))


def _weekday_number(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text.lower() in _WEEKDAYS:
        return _WEEKDAYS.index(text.lower())
    raise ValueError(f"bad day of week {text!r} (use 0-7 or sun-sat)")


def crontab_fields(expression: str) -> dict[str, str]:
    """APScheduler CronTrigger fields for a five-field crontab expression.

    APScheduler numbers weekdays from Monday = 0, crontab from Sunday = 0; its own
    `from_crontab` passes the numbers through unchanged, so "1-5" would mean Tuesday to
    Saturday. Weekdays are translated to names here, so "1-5" means Monday to Friday.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, weekdays = fields
    day_of_week = ",".join(_weekday_part(part) for part in weekdays.split(","))
    return {"minute": minute, "hour": hour, "day": day, "month": month, "day_of_week": day_of_week}


def _cron(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"cron expression must be a string, got {value!r}")
    try:
        CronTrigger(**crontab_fields(value))
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a valid cron expression (minute hour day month weekday): {exc}"
        ) from exc
    return value


CronExpression = Annotated[str, BeforeValidator(_cron)]
"""A five-field crontab expression, checked by APScheduler's own parser."""

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_SECONDS = {
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
}


def parse_duration(value: Any) -> Decimal:
    """Turn '30s', '5m', '2h' or an integer number of seconds into seconds."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite() and value > 0:
        return value  # already parsed: a dumped model validates again
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return Decimal(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{value!r} is not a positive duration such as '30s', '5m' or '2h'")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[Decimal, BeforeValidator(parse_duration)]
"""A positive duration in seconds, written as '30s', '5m', '2h', '1d' or seconds."""


DidKey = Annotated[str, StringConstraints(pattern=r"^did:key:z[1-9A-HJ-NP-Za-km-z]+$")]
"""A did:key (an agent's or an operator's DID)."""
