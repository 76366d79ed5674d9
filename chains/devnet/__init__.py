"""Local chains: anvil per EVM chain id and a LiteSVM-backed Solana JSON-RPC server."""
