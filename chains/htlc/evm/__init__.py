"""The EVM HTLC contract: Solidity sources, compiled artifacts, and the solc build."""

from pathlib import Path

CONTRACT_DIR = Path(__file__).resolve().parent
"""Where the sources and the committed artifacts (``HTLC.json``) live."""
