"""Confirmation latency is read from the journal incrementally (agents/console/metrics.py):
each scrape adds only what became final since the previous one, and a transaction final
at the very instant the previous scrape stopped at is counted once, not twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agents.console.metrics import _Confirmations
from chains._store import journal
from config.store import open_store

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _final(store, tx_id: str, chain: str, took: float, at: datetime) -> None:
    row = {
        "tx_id": tx_id,
        "chain": chain,
        "sender": "0xsender",
        "nonce": None,
        "expires_at_height": None,
        "raw": b"\x00",
        "status": "final",
        "reason": None,
        "replaces": None,
        "created_at": at - timedelta(seconds=took),
        "updated_at": at,
    }
    with store.begin() as connection:
        connection.execute(journal.insert(), row)


def _counts(confirmations: _Confirmations) -> dict[str, tuple[float, float]]:
    family = confirmations.family()
    found = {}
    for sample in family.samples:
        if sample.name.endswith("_count"):
            chain = sample.labels["chain"]
            total = next(
                s.value
                for s in family.samples
                if s.name.endswith("_sum") and s.labels == sample.labels
            )
            found[chain] = (sample.value, total)
    return found


def test_each_final_transaction_is_counted_once_across_scrapes(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        confirmations = _Confirmations(store)
        assert _counts(confirmations) == {}
        _final(store, "a", "arb", 2.0, T0)
        _final(store, "b", "sol", 1.0, T0)
        assert _counts(confirmations) == {"arb": (1, 2.0), "sol": (1, 1.0)}
        # Negative control: a scrape with nothing new adds nothing.
        assert _counts(confirmations) == {"arb": (1, 2.0), "sol": (1, 1.0)}
        # Final at the instant the last scrape stopped at, and later: each counted once.
        _final(store, "c", "arb", 3.0, T0)
        _final(store, "d", "arb", 4.0, T0 + timedelta(seconds=5))
        assert _counts(confirmations) == {"arb": (3, 9.0), "sol": (1, 1.0)}
        assert _counts(confirmations) == {"arb": (3, 9.0), "sol": (1, 1.0)}
    finally:
        store.dispose()
