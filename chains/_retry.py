"""Retry reads with exponential backoff. Broadcasts never go through here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from config.errors import RpcUnreachable

T = TypeVar("T")


async def read(
    operation: Callable[[], Awaitable[T]], *, attempts: int = 4, first_delay: float = 0.05
) -> T:
    """Run the read `operation`, retrying only when the endpoint was unreachable.

    A read has no side effect on chain, so repeating it is safe; every other error is a
    real answer and is raised at once.
    """
    delay = first_delay
    for _ in range(attempts - 1):
        try:
            return await operation()
        except RpcUnreachable:
            await asyncio.sleep(delay)
            delay *= 4
    return await operation()
