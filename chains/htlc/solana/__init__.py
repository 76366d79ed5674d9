"""The Solana HTLC program: sBPF assembly source, assembler/linker, build, LiteSVM harness."""
