"""Retry reads with exponential backoff. Broadcasts never go through here.

This is also the one place read errors are seen, so it is where they are counted: the
caller passes `on_error` (the adapter's :meth:`~chains.base.ChainAdapter.rpc_error`),
called once for every failed attempt, retried or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from config.errors import ChainError, RpcUnreachable

T = TypeVar("T")
ErrorHook = Callable[[ChainError], None]


async def read(
    operation: Callable[[], Awaitable[T]],
    *,
    attempts: int = 4,
    first_delay: float = 0.05,
    on_error: ErrorHook | None = None,
) -> T:
    """Run the read `operation`, retrying only when the endpoint was unreachable.

    A read has no side effect on chain, so repeating it is safe; every other error is a
    real answer and is raised at once.
    """
    delay = first_delay
    for attempt in range(attempts):
        try:
            return await operation()
        except ChainError as exc:
            if on_error is not None:
                on_error(exc)
            if not isinstance(exc, RpcUnreachable) or attempt == attempts - 1:
                raise
        await asyncio.sleep(delay)
        delay *= 4
    raise AssertionError("unreachable: the last attempt returns or raises")
