"""The audit log: one signed, hash-chained entry per agent tick.

Each entry holds digests of the observation and the prompt, every raw model reply, the
parsed plan, the confidence evidence, each policy's verdict, the transactions and their
outcomes. Entries of one agent form a chain: an entry's hash covers its position, time,
signer DID, the previous entry's hash and its body, all as canonical JSON (sorted keys,
no spaces, no floats). The agent's DID key signs each entry as a compact JWS whose
payload names the agent, position and hash; a separately signed *head* row names the
last entry, so removing entries from the end is detected too.

:func:`verify` reports every problem and which entry has it: an edited body (hash no
longer matches what was signed), a reordered entry (the signature says it was written at
another position), deleted entries (a gap, a broken link, or a head beyond the end), a
forged or foreign signature. Limits: someone with the database and an *old copy* of it
can roll the whole log back to that copy; anchoring heads outside the store closes that.

The writer refuses any field whose name looks like key material (keys, seeds,
mnemonics, preimages, passphrases): secrets never enter the log.

The modules: `entry` (the entry model, its canonical digest and signed payloads),
`tables` (storage and reading), `verify` (checking a stored log), `log` (the writer).
"""

from agents.audit.entry import (
    ENTRY_TYP,
    GENESIS,
    HEAD_TYP,
    AuditEntry,
    AuditProblem,
    AuditRecord,
    AuditReport,
    PolicyVerdict,
    ProblemKind,
    canonical_json,
    digest,
    refuse_secrets,
)
from agents.audit.log import AuditLog, AuditSigner, append
from agents.audit.tables import agents, audit_entries, audit_heads, entries, metadata
from agents.audit.verify import verify

__all__ = [
    "ENTRY_TYP",
    "GENESIS",
    "HEAD_TYP",
    "AuditEntry",
    "AuditLog",
    "AuditProblem",
    "AuditRecord",
    "AuditReport",
    "AuditSigner",
    "PolicyVerdict",
    "ProblemKind",
    "agents",
    "append",
    "audit_entries",
    "audit_heads",
    "canonical_json",
    "digest",
    "entries",
    "metadata",
    "refuse_secrets",
    "verify",
]
