"""Chain adapters, local chains, and the HTLC contracts and program."""
