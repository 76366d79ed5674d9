"""The EVM HTLC contract: Solidity sources, compiled artifacts, and the solc build."""
