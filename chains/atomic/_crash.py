"""Crash injection for the crash tests: ``COVENANT_CRASH_AT=<boundary>:<n>`` makes the
process SIGKILL itself the n-th time it reaches `boundary` (a journal boundary of the
coordinator); a comma-separated list of them, at whichever comes first. It says where on
stderr first, so a test can tell. Unset (always, outside tests), :func:`boundary` does
nothing."""

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
    targets = os.environ.get(ENV_VAR)
    if not targets:
        return
    for target in targets.split(","):
        wanted, _, count = target.partition(":")
        if wanted == name:
            _hits[name] = _hits.get(name, 0) + 1
            if _hits[name] == int(count or "1"):
                os.write(2, f"{ENV_VAR}: killed at {name}\n".encode())
                os.kill(os.getpid(), signal.SIGKILL)
