"""Hash-time-locked escrow: the EVM contract, the Solana program, and their clients."""
