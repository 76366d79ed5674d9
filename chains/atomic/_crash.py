"""Crash injection for the crash tests: ``COVENANT_CRASH_AT=<boundary>:<n>`` makes the
process SIGKILL itself the n-th time it reaches `boundary` (a journal boundary of the
coordinator). Unset (always, outside tests), :func:`boundary` does nothing."""

from __future__ import annotations

import os
import signal

ENV_VAR = "COVENANT_CRASH_AT"
BOUNDARIES = (
    "plan_journaled",
    "approve_intent",
    "approve_signed",
    "approve_final",
    "lock_intent",
    "lock_signed",
    "lock_final",
    "locked_all",
    "claim_intent",
    "claim_signed",
    "claim_final",
    "refund_intent",
    "refund_signed",
    "refund_final",
    "revoke_intent",
    "revoke_signed",
    "revoke_final",
)
_hits: dict[str, int] = {}


def boundary(name: str) -> None:
    """Count a pass through journal boundary `name`; die here if the env var says so."""
    target = os.environ.get(ENV_VAR)
    if not target:
        return
    wanted, _, count = target.partition(":")
    if wanted != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(count or "1"):
        os.kill(os.getpid(), signal.SIGKILL)
